"""Clients for the push providers: FCM HTTP v1, APNs and Web Push.

Each client turns one ``PushMessage`` for one device credential into an
``Outcome``; what to do about it (retry, delete the credential, log) is the
caller's. ``local`` holds servers that speak each provider's protocol, for
the tests and the local cluster.
"""
