"""The authenticated service mesh: certificates, channel and server
credentials, caller identities and the per-RPC policy.

Every internal gRPC connection is mutual TLS. A peer's identity is the SPIFFE
URI in its certificate (``spiffe://chatmesh.local/service/gateway``,
``spiffe://chatmesh.local/client/<team>``); what it may call is decided by
``policy``, never by fields of the request.
"""
