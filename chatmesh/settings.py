"""Reading typed settings from the environment.

Each service defines one frozen settings dataclass with a ``from_env``
constructor built from these helpers, called once in its ``main``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{ENV_PREFIX}{name} must be true or false, got {raw!r}")


def env_path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(ENV_PREFIX + name)
    return Path(raw) if raw else None


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files a store client verifies its server by and, for mutual TLS,
    proves its own identity with. Without a CA file the system's trust store
    verifies the server."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @property
    def any(self) -> bool:
        return any(f is not None for f in (self.ca_file, self.cert_file, self.key_file))

    @classmethod
    def from_env(cls, env: Mapping[str, str], store: str) -> TlsFiles:
        """``store`` names the variables: ``CASSANDRA`` reads
        ``CHATMESH_CASSANDRA_CA_FILE``, ``_CERT_FILE`` and ``_KEY_FILE``."""
        files = cls(
            ca_file=env_path(env, f"{store}_CA_FILE"),
            cert_file=env_path(env, f"{store}_CERT_FILE"),
            key_file=env_path(env, f"{store}_KEY_FILE"),
        )
        if (files.cert_file is None) != (files.key_file is None):
            raise SettingsError(
                f"{ENV_PREFIX}{store}_CERT_FILE and {ENV_PREFIX}{store}_KEY_FILE go together"
            )
        return files


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
    # Offered when the cluster runs an authenticator (PasswordAuthenticator);
    # a cluster that asks for no credentials gets none.
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # None: plaintext, as a local single node runs. TLS needs a CA file.
    tls: TlsFiles | None = None
    # Nodes are often reached by the IP addresses they announce, so their
    # certificates must carry those as IP SANs for this check; switched off,
    # the chain is still verified against the CA.
    tls_check_hostname: bool = True
    # The datacenter whose nodes serve requests (LOCAL_QUORUM counts its
    # replicas); None takes the datacenter of the first node reached.
    local_dc: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CassandraSettings:
        username = env.get(ENV_PREFIX + "CASSANDRA_USERNAME") or None
        password = env.get(ENV_PREFIX + "CASSANDRA_PASSWORD") or None
        if (username is None) != (password is None):
            raise SettingsError(
                f"{ENV_PREFIX}CASSANDRA_USERNAME and {ENV_PREFIX}CASSANDRA_PASSWORD go together"
            )
        tls = TlsFiles.from_env(env, "CASSANDRA")
        if tls.any and tls.ca_file is None:
            raise SettingsError(f"Cassandra TLS needs {ENV_PREFIX}CASSANDRA_CA_FILE")
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
            username=username,
            password=password,
            tls=tls if tls.any else None,
            tls_check_hostname=env_bool(env, "CASSANDRA_TLS_CHECK_HOSTNAME", True),
            local_dc=env.get(ENV_PREFIX + "CASSANDRA_LOCAL_DC") or None,
        )


# Credentials ride in the URL and the DSN: rediss://user:password@host:port/db
# is TLS as an ACL user; the DSN takes libpq's sslmode, sslrootcert, sslcert
# and sslkey (or PGSSLROOTCERT, PGPASSWORD, ... from the environment), which
# asyncpg honours. The local defaults are plaintext without passwords.
DEFAULT_REDIS_URL = "redis://127.0.0.1:16379/0"
DEFAULT_PG_DSN = "postgresql://chatmesh@127.0.0.1:15432/chatmesh"
DEFAULT_MSGSVC_ADDR = "127.0.0.1:50051"
DEFAULT_SESSIONSVC_ADDR = "127.0.0.1:50052"
DEFAULT_PRESENCESVC_ADDR = "127.0.0.1:50053"


@dataclass(frozen=True, slots=True)
class RedisServiceSettings:
    """Settings of a service whose only store is Redis (sessions)."""

    common: CommonSettings
    redis_url: str
    redis_tls: TlsFiles
    redis_cluster: bool  # the URL names one node of a Redis Cluster

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, default_grpc_port: int) -> RedisServiceSettings:
        return cls(
            common=CommonSettings.from_env(env, default_grpc_port=default_grpc_port),
            redis_url=env_str(env, "REDIS_URL", DEFAULT_REDIS_URL),
            redis_tls=TlsFiles.from_env(env, "REDIS"),
            redis_cluster=env_bool(env, "REDIS_CLUSTER", False),
        )
