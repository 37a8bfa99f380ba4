"""Configuration of the notification service, read once in main."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from chatmesh.kafka_io import KafkaSettings
from chatmesh.push_jobs import push_topic
from chatmesh.settings import (
    DEFAULT_PG_DSN,
    DEFAULT_SESSIONSVC_ADDR,
    CassandraSettings,
    CommonSettings,
    SettingsError,
    env_int,
    env_path,
    env_str,
)
from notifysvc.providers.apns import PRODUCTION_URL, SANDBOX_URL
from notifysvc.providers.fcm import DEFAULT_BASE_URL as FCM_URL
from notifysvc.providers.http import REQUEST_TIMEOUT_S
from notifysvc.windows import DEFAULT_WINDOW_S

DEFAULT_GRPC_PORT = 50054


@dataclass(frozen=True, slots=True)
class FcmSettings:
    service_account_file: Path  # the JSON key Firebase gives a service account
    url: str


@dataclass(frozen=True, slots=True)
class ApnsSettings:
    key_file: Path  # the .p8 signing key (PEM)
    team_id: str
    key_id: str
    production_url: str
    sandbox_url: str
    # Extra trust for the APNs servers (a local APNs); None: the system's store.
    ca_file: Path | None


@dataclass(frozen=True, slots=True)
class WebPushSettings:
    vapid_key_file: Path  # our P-256 application server key (PEM)
    subject: str  # mailto: or https: contact for the push services


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """Each provider is optional: a deployment without, say, an iOS app has no
    APNs key, and its devices' pushes are dropped with a log line."""

    fcm: FcmSettings | None
    apns: ApnsSettings | None
    webpush: WebPushSettings | None
    # A provider that has not answered by then is retried later: a hung
    # request must not hold a sending slot for long.
    request_timeout_s: float = REQUEST_TIMEOUT_S

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProviderSettings:
        fcm_account = env_path(env, "FCM_SERVICE_ACCOUNT_FILE")
        apns_key = env_path(env, "APNS_KEY_FILE")
        vapid_key = env_path(env, "WEBPUSH_VAPID_KEY_FILE")
        return cls(
            fcm=None
            if fcm_account is None
            else FcmSettings(fcm_account, env_str(env, "FCM_URL", FCM_URL)),
            apns=None
            if apns_key is None
            else ApnsSettings(
                key_file=apns_key,
                team_id=env_str(env, "APNS_TEAM_ID"),
                key_id=env_str(env, "APNS_KEY_ID"),
                production_url=env_str(env, "APNS_PRODUCTION_URL", PRODUCTION_URL),
                sandbox_url=env_str(env, "APNS_SANDBOX_URL", SANDBOX_URL),
                ca_file=env_path(env, "APNS_CA_FILE"),
            ),
            webpush=None
            if vapid_key is None
            else WebPushSettings(vapid_key, env_str(env, "WEBPUSH_SUBJECT")),
            request_timeout_s=_positive_ms(env, "PUSH_PROVIDER_TIMEOUT_MS", REQUEST_TIMEOUT_S),
        )


@dataclass(frozen=True, slots=True)
class NotifySettings:
    common: CommonSettings
    cassandra: CassandraSettings
    pg_dsn: str
    sessionsvc_addr: str
    instance_id: str
    # The push job topic (its name, partitions and replication) and how to
    # reach the brokers; the message log's settings with another topic.
    kafka: KafkaSettings
    window_s: float  # a device's missed messages within this become one push
    providers: ProviderSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> NotifySettings:
        common = CommonSettings.from_env(env, default_grpc_port=DEFAULT_GRPC_PORT)
        return cls(
            common=common,
            cassandra=CassandraSettings.from_env(env),
            pg_dsn=env_str(env, "PG_DSN", DEFAULT_PG_DSN),
            sessionsvc_addr=env_str(env, "SESSIONSVC_ADDR", DEFAULT_SESSIONSVC_ADDR),
            instance_id=env_str(env, "INSTANCE_ID", socket.gethostname()),
            kafka=push_topic(
                env, common.key_prefix, KafkaSettings.from_env(env, common.key_prefix)
            ),
            window_s=_positive_ms(env, "PUSH_WINDOW_MS", DEFAULT_WINDOW_S, allow_zero=True),
            providers=ProviderSettings.from_env(env),
        )


def _positive_ms(
    env: Mapping[str, str], name: str, default_s: float, *, allow_zero: bool = False
) -> float:
    """A duration given in ms, as seconds."""
    value = env_int(env, name, int(default_s * 1000))
    if value < 0 or (value == 0 and not allow_zero):
        raise SettingsError(f"CHATMESH_{name} must be {'at least 0' if allow_zero else 'positive'}")
    return value / 1000
