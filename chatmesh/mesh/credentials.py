"""Mutual-TLS credentials for servers and channels, read from a directory in
cert-manager's layout (``tls.crt``, ``tls.key``, ``ca.crt``).

Servers re-read the directory when its files change, so a certificate that
cert-manager renews in a mounted Secret is served from the next handshake on,
without a restart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from chatmesh.mesh.pki import CA_FILE, CERT_FILE, KEY_FILE
from chatmesh.mesh.renewing_channel import CHECK_INTERVAL_S, RenewingChannel

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MeshTls:
    """Where this process's mesh credentials are mounted."""

    directory: Path
    # How often a channel looks for a renewed certificate (RenewingChannel).
    renew_check_s: float = CHECK_INTERVAL_S

    def _read(self) -> tuple[bytes, bytes, bytes]:
        return (
            (self.directory / KEY_FILE).read_bytes(),
            (self.directory / CERT_FILE).read_bytes(),
            (self.directory / CA_FILE).read_bytes(),
        )

    def _fingerprint(self) -> tuple[tuple[int, int], ...]:
        stats = [os.stat(self.directory / name) for name in (KEY_FILE, CERT_FILE, CA_FILE)]
        return tuple((s.st_mtime_ns, s.st_size) for s in stats)

    def server_credentials(self) -> grpc.ServerCredentials:
        """Requires and verifies a client certificate from our CA on every
        connection; reloads the files when they change."""
        key, cert, ca = self._read()
        loaded = [self._fingerprint()]

        def current() -> grpc.ServerCertificateConfiguration:
            key, cert, ca = self._read()
            return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            # Called by gRPC before each handshake; None keeps the last one.
            try:
                fingerprint = self._fingerprint()
                if fingerprint == loaded[0]:
                    return None
                configuration = current()
            except (OSError, ValueError):
                log.warning("mesh certificate reload failed; keeping the previous one")
                return None
            loaded[0] = fingerprint
            log.info("mesh certificate reloaded", extra={"fields": {"dir": str(self.directory)}})
            return configuration

        return grpc.dynamic_ssl_server_credentials(
            grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca),
            fetch,
            require_client_authentication=True,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        key, cert, ca = self._read()
        return grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )

    def channel(
        self,
        target: str,
        service: str,
        options: Sequence[tuple[str, int | str]] = (),
        *,
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    ) -> grpc.aio.Channel:
        """A channel to ``service`` at ``target``. The server must present a
        certificate from our CA naming ``service``, whatever address it has;
        this process presents its own, renewed ones included."""

        def open_channel() -> grpc.aio.Channel:
            return grpc.aio.secure_channel(
                target,
                self.channel_credentials(),
                options=[*options, ("grpc.ssl_target_name_override", service)],
                interceptors=list(interceptors) or None,
            )

        return RenewingChannel(open_channel, self._fingerprint, check_interval_s=self.renew_check_s)

    def sync_channel(self, target: str, service: str) -> grpc.Channel:
        return grpc.secure_channel(
            target,
            self.channel_credentials(),
            options=[("grpc.ssl_target_name_override", service)],
        )
