"""Reading typed settings from the environment.

Each service defines one frozen settings dataclass with a ``from_env``
constructor built from these helpers, called once in its ``main``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX = "CHATMESH_"


class SettingsError(ValueError):
    pass


def env_str(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(ENV_PREFIX + name, default)
    if value is None or value == "":
        if default is not None:
            return default
        raise SettingsError(f"{ENV_PREFIX}{name} is required")
    return value


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{ENV_PREFIX}{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True, slots=True)
class CommonSettings:
    """What every process reads."""

    grpc_listen: str
    log_level: str
    key_prefix: str  # prefixes every Redis key and channel; isolates tests and tenants
    # This process's mesh certificate, key and CA (tls.crt, tls.key, ca.crt),
    # e.g. a cert-manager Secret mounted as a volume. There is no plaintext mode.
    mesh_tls_dir: Path
    # Plain HTTP: /healthz, /readyz, /metrics. Port 0 picks a free one (logged).
    ops_listen: str

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, default_grpc_port: int) -> CommonSettings:
        return cls(
            grpc_listen=env_str(env, "GRPC_LISTEN", f"127.0.0.1:{default_grpc_port}"),
            log_level=env_str(env, "LOG_LEVEL", "INFO"),
            key_prefix=env_str(env, "KEY_PREFIX", "cm:"),
            mesh_tls_dir=Path(env_str(env, "MESH_TLS_DIR")),
            ops_listen=env_str(env, "OPS_LISTEN", "127.0.0.1:0"),
        )


@dataclass(frozen=True, slots=True)
class CassandraSettings:
    hosts: tuple[str, ...]
    port: int
    keyspace: str
    consistency: str  # LOCAL_QUORUM in production, ONE on a single node
    replication: str  # CQL replication map for keyspace creation

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CassandraSettings:
        return cls(
            hosts=tuple(h.strip() for h in env_str(env, "CASSANDRA_HOSTS", "127.0.0.1").split(",")),
            port=env_int(env, "CASSANDRA_PORT", 19042),
            keyspace=env_str(env, "CASSANDRA_KEYSPACE", "chatmesh"),
            consistency=env_str(env, "CASSANDRA_CONSISTENCY", "ONE"),
            replication=env_str(
                env,
                "CASSANDRA_REPLICATION",
                "{'class': 'SimpleStrategy', 'replication_factor': 1}",
            ),
        )


DEFAULT_REDIS_URL = "redis://127.0.0.1:16379/0"
DEFAULT_PG_DSN = "postgresql://chatmesh@127.0.0.1:15432/chatmesh"
DEFAULT_MSGSVC_ADDR = "127.0.0.1:50051"
DEFAULT_SESSIONSVC_ADDR = "127.0.0.1:50052"
DEFAULT_PRESENCESVC_ADDR = "127.0.0.1:50053"
DEFAULT_NOTIFYSVC_ADDR = "127.0.0.1:50054"


@dataclass(frozen=True, slots=True)
class RedisServiceSettings:
    """Settings of a service whose only store is Redis (sessions, presence, push queue)."""

    common: CommonSettings
    redis_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, default_grpc_port: int) -> RedisServiceSettings:
        return cls(
            common=CommonSettings.from_env(env, default_grpc_port=default_grpc_port),
            redis_url=env_str(env, "REDIS_URL", DEFAULT_REDIS_URL),
        )
