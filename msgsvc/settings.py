"""Configuration of the message service, read once in main."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass

from chatmesh.settings import (
    DEFAULT_NOTIFYSVC_ADDR,
    DEFAULT_PG_DSN,
    DEFAULT_REDIS_URL,
    DEFAULT_SESSIONSVC_ADDR,
    CassandraSettings,
    CommonSettings,
    env_str,
)

DEFAULT_GRPC_PORT = 50051


@dataclass(frozen=True, slots=True)
class MsgsvcSettings:
    common: CommonSettings
    cassandra: CassandraSettings
    redis_url: str
    pg_dsn: str
    sessionsvc_addr: str
    notifysvc_addr: str
    # Stable across restarts of the same instance (the pod name in k8s), so a
    # restarted process finds the route journal its previous life left.
    instance_id: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MsgsvcSettings:
        return cls(
            common=CommonSettings.from_env(env, default_grpc_port=DEFAULT_GRPC_PORT),
            cassandra=CassandraSettings.from_env(env),
            redis_url=env_str(env, "REDIS_URL", DEFAULT_REDIS_URL),
            pg_dsn=env_str(env, "PG_DSN", DEFAULT_PG_DSN),
            sessionsvc_addr=env_str(env, "SESSIONSVC_ADDR", DEFAULT_SESSIONSVC_ADDR),
            notifysvc_addr=env_str(env, "NOTIFYSVC_ADDR", DEFAULT_NOTIFYSVC_ADDR),
            instance_id=env_str(env, "INSTANCE_ID", socket.gethostname()),
        )
