"""TLS contexts for store clients whose drivers take an ``ssl.SSLContext``
(Cassandra's). Redis's driver takes the same files as options; PostgreSQL's
reads its own from the DSN."""

from __future__ import annotations

import ssl

from chatmesh.settings import TlsFiles


def client_context(files: TlsFiles, *, check_hostname: bool = True) -> ssl.SSLContext:
    """Verifies the server's chain against ``files.ca_file`` (the system's
    trust store without one) and, unless ``check_hostname`` is off, that its
    certificate names the address dialled. Presents ``files.cert_file`` when
    given, for servers that require client certificates."""
    cafile = str(files.ca_file) if files.ca_file is not None else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = check_hostname
    if files.cert_file is not None:
        context.load_cert_chain(files.cert_file, files.key_file)
    return context
