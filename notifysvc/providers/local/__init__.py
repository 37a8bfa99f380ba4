"""Local stand-ins for FCM, APNs and a Web Push service.

They check what the real providers check (signatures, token lifetimes,
required headers, and for Web Push the RFC 8291 encryption, by decrypting),
record what they accept, and can be told to fail for one credential. For the
tests and the local cluster only: nothing here ships in a production path.
"""
