"""Media: uploads and downloads through pre-signed object store URLs.

msgsvc hands out URLs and keeps the record of each upload; the bytes go
between clients and the object store and never through a chat server.
"""
