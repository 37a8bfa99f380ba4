"""Configuration of the message service, read once in main."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass

from chatmesh.kafka_io import KafkaSettings
from chatmesh.object_store import ObjectStoreSettings
from chatmesh.push_jobs import push_topic
from chatmesh.settings import (
    DEFAULT_PG_DSN,
    DEFAULT_REDIS_URL,
    DEFAULT_SESSIONSVC_ADDR,
    CassandraSettings,
    CommonSettings,
    SettingsError,
    TlsFiles,
    env_bool,
    env_int,
    env_str,
)
from msgsvc.groups import MAX_CHANNEL_MEMBERS, MAX_GROUP_MEMBERS
from msgsvc.media.settings import MediaSettings
from msgsvc.storage.claims import LegacyClaims

DEFAULT_GRPC_PORT = 50051


@dataclass(frozen=True, slots=True)
class MsgsvcSettings:
    common: CommonSettings
    cassandra: CassandraSettings
    redis_url: str
    redis_tls: TlsFiles
    redis_cluster: bool  # the URL names one node of a Redis Cluster
    pg_dsn: str
    sessionsvc_addr: str
    # Stable across restarts of the same instance (the pod name in k8s), so a
    # restarted process finds the route journal its previous life left.
    instance_id: str
    # How the user-scoped idempotency claims of before decision 0010 are
    # treated while they age out: mirror, read or off.
    legacy_claims: LegacyClaims
    max_group_members: int
    max_channel_members: int
    channel_nudge_window_s: float  # fan-out: at most one nudge per channel per window
    kafka: KafkaSettings
    push_kafka: KafkaSettings  # the push job topic: the routers append to it
    object_store: ObjectStoreSettings  # media bytes
    media: MediaSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MsgsvcSettings:
        common = CommonSettings.from_env(env, default_grpc_port=DEFAULT_GRPC_PORT)
        return cls(
            common=common,
            cassandra=CassandraSettings.from_env(env),
            redis_url=env_str(env, "REDIS_URL", DEFAULT_REDIS_URL),
            redis_tls=TlsFiles.from_env(env, "REDIS"),
            redis_cluster=env_bool(env, "REDIS_CLUSTER", False),
            pg_dsn=env_str(env, "PG_DSN", DEFAULT_PG_DSN),
            sessionsvc_addr=env_str(env, "SESSIONSVC_ADDR", DEFAULT_SESSIONSVC_ADDR),
            instance_id=env_str(env, "INSTANCE_ID", socket.gethostname()),
            legacy_claims=_legacy_claims(env_str(env, "LEGACY_CLAIMS", LegacyClaims.READ.value)),
            max_group_members=env_int(env, "MAX_GROUP_MEMBERS", MAX_GROUP_MEMBERS),
            max_channel_members=env_int(env, "MAX_CHANNEL_MEMBERS", MAX_CHANNEL_MEMBERS),
            channel_nudge_window_s=env_int(env, "CHANNEL_NUDGE_WINDOW_MS", 1000) / 1000,
            kafka=KafkaSettings.from_env(env, common.key_prefix),
            push_kafka=push_topic(
                env, common.key_prefix, KafkaSettings.from_env(env, common.key_prefix)
            ),
            object_store=ObjectStoreSettings.from_env(env),
            media=MediaSettings.from_env(env),
        )


def _legacy_claims(raw: str) -> LegacyClaims:
    try:
        return LegacyClaims(raw)
    except ValueError as exc:
        allowed = ", ".join(m.value for m in LegacyClaims)
        raise SettingsError(
            f"CHATMESH_LEGACY_CLAIMS must be one of {allowed}, got {raw!r}"
        ) from exc
