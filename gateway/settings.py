"""Configuration of a gateway instance, read once in main."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from chatmesh.ratelimit import Limit
from chatmesh.settings import (
    DEFAULT_MSGSVC_ADDR,
    DEFAULT_PRESENCESVC_ADDR,
    DEFAULT_REDIS_URL,
    DEFAULT_SESSIONSVC_ADDR,
    CommonSettings,
    TlsFiles,
    env_bool,
    env_int,
    env_str,
)
from gateway.admission import AdmissionLimits, IpNetwork, parse_networks
from gateway.presence import PRESENCE_LEASE_S

DEFAULT_GRPC_PORT = 50060
DEFAULT_WS_PORT = 8100


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    common: CommonSettings
    gateway_id: str
    ws_listen: str
    redis_url: str
    redis_tls: TlsFiles
    redis_cluster: bool  # the URL names one node of a Redis Cluster
    msgsvc_addr: str
    sessionsvc_addr: str
    presencesvc_addr: str
    jwt_public_key_file: str
    msgsvc_streams: int
    drain_s: float
    nudge_window_s: float  # channel nudges per connection: at most one frame per window
    # How long this gateway's users stay online if it stops reporting (it
    # renews every third of it): a crashed gateway's users go offline then.
    presence_lease_s: int
    admission: AdmissionLimits
    # Peers whose X-Forwarded-For names the client: the edge Envoy.
    trusted_proxies: list[IpNetwork]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GatewaySettings:
        defaults = AdmissionLimits()
        return cls(
            common=CommonSettings.from_env(env, default_grpc_port=DEFAULT_GRPC_PORT),
            gateway_id=env_str(env, "GATEWAY_ID", f"{socket.gethostname()}-{os.getpid()}"),
            ws_listen=env_str(env, "WS_LISTEN", f"127.0.0.1:{DEFAULT_WS_PORT}"),
            redis_url=env_str(env, "REDIS_URL", DEFAULT_REDIS_URL),
            redis_tls=TlsFiles.from_env(env, "REDIS"),
            redis_cluster=env_bool(env, "REDIS_CLUSTER", False),
            msgsvc_addr=env_str(env, "MSGSVC_ADDR", DEFAULT_MSGSVC_ADDR),
            sessionsvc_addr=env_str(env, "SESSIONSVC_ADDR", DEFAULT_SESSIONSVC_ADDR),
            presencesvc_addr=env_str(env, "PRESENCESVC_ADDR", DEFAULT_PRESENCESVC_ADDR),
            jwt_public_key_file=env_str(env, "JWT_PUBLIC_KEY_FILE"),
            msgsvc_streams=env_int(env, "MSGSVC_STREAMS", 2),
            drain_s=env_int(env, "DRAIN_MS", 2000) / 1000,
            nudge_window_s=env_int(env, "NUDGE_WINDOW_MS", 2000) / 1000,
            presence_lease_s=env_int(env, "PRESENCE_LEASE_S", PRESENCE_LEASE_S),
            admission=AdmissionLimits(
                max_connections=env_int(env, "MAX_CONNECTIONS", defaults.max_connections),
                max_handshakes_in_flight=env_int(
                    env, "MAX_HANDSHAKES_IN_FLIGHT", defaults.max_handshakes_in_flight
                ),
                max_handshakes_waiting=env_int(
                    env, "MAX_HANDSHAKES_WAITING", defaults.max_handshakes_waiting
                ),
                max_handshake_wait_s=env_int(
                    env, "MAX_HANDSHAKE_WAIT_MS", int(defaults.max_handshake_wait_s * 1000)
                )
                / 1000,
                per_address=_limit(env, "HANDSHAKES_PER_ADDRESS", defaults.per_address),
                per_user=_limit(env, "HANDSHAKES_PER_USER", defaults.per_user),
            ),
            trusted_proxies=parse_networks(env_str(env, "TRUSTED_PROXIES", "127.0.0.0/8,::1/128")),
        )


def _limit(env: Mapping[str, str], name: str, default: Limit) -> Limit:
    """``CHATMESH_<name>_RATE`` per second, ``CHATMESH_<name>_BURST`` at once."""
    rate = env_int(env, f"{name}_RATE", int(default.rate_per_s))
    return Limit(default.name, float(rate), env_int(env, f"{name}_BURST", default.burst))


def split_host_port(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)
