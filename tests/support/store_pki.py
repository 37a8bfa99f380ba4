"""Certificates for stores the tests run with TLS, from the mesh's LocalCA.

One CA signs a server certificate for ``localhost`` and 127.0.0.1 (the
address the tests dial), one for ``localhost`` only (to prove hostname
checks against an address), and a client certificate for servers that
require one. A second CA signs nothing the servers present: a client that
trusts only it must refuse every server here.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from chatmesh.mesh.pki import CA_FILE, CERT_FILE, KEY_FILE, LocalCA, Principal
from chatmesh.settings import TlsFiles

LOOPBACK = ipaddress.ip_address("127.0.0.1")


@dataclass(frozen=True, slots=True)
class Credentials:
    """A directory as ``LocalCA.issue`` writes it."""

    directory: Path

    @property
    def cert_file(self) -> Path:
        return self.directory / CERT_FILE

    @property
    def key_file(self) -> Path:
        return self.directory / KEY_FILE


@dataclass(frozen=True, slots=True)
class StorePki:
    ca_file: Path
    server: Credentials  # names localhost and 127.0.0.1
    server_by_name: Credentials  # names localhost only
    client: Credentials
    untrusted_ca_file: Path

    def client_files(self, *, with_certificate: bool = True) -> TlsFiles:
        """What a store client of ours is configured with."""
        return TlsFiles(
            ca_file=self.ca_file,
            cert_file=self.client.cert_file if with_certificate else None,
            key_file=self.client.key_file if with_certificate else None,
        )

    def server_context(
        self, *, require_client_cert: bool = True, by_name_only: bool = False
    ) -> ssl.SSLContext:
        """A server side for a TLS terminator in front of a real store."""
        credentials = self.server_by_name if by_name_only else self.server
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(credentials.cert_file, credentials.key_file)
        if require_client_cert:
            context.load_verify_locations(self.ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
        return context


def issue_store_pki(root: Path) -> StorePki:
    ca = LocalCA.create(root / "ca", common_name="chatmesh test stores CA")
    server = ca.issue(
        Principal.service("store"),
        root / "server",
        dns_names=["localhost"],
        ip_addresses=[LOOPBACK],
    )
    server_by_name = ca.issue(
        Principal.service("store"), root / "server-by-name", dns_names=["localhost"]
    )
    client = ca.issue(Principal.client("tests"), root / "client")
    untrusted = LocalCA.create(root / "untrusted-ca", common_name="a CA nobody here trusts")
    return StorePki(
        ca_file=root / "ca" / CA_FILE,
        server=Credentials(server),
        server_by_name=Credentials(server_by_name),
        client=Credentials(client),
        untrusted_ca_file=untrusted.directory / CA_FILE,
    )
