"""The APNs client against the local APNs: HTTP/2 over TLS, ES256 provider tokens."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chatmesh.mesh.pki import LocalCA, Principal
from notifysvc.providers.apns import (
    TOKEN_MAX_AGE_S,
    TOKEN_MIN_AGE_S,
    ApnsClient,
    ApnsCredentials,
    ApnsDevice,
    ProviderTokens,
)
from notifysvc.providers.http import HttpOptions, make_client
from notifysvc.providers.local.apns import LocalApns
from notifysvc.providers.local.faults import Fault
from notifysvc.providers.local.server import LocalServer
from notifysvc.providers.message import (
    CredentialDead,
    Delivered,
    PushMessage,
    Rejected,
    RetryAfter,
)

TEAM = "TEAM123456"
KEY_ID = "KEY1234567"
TOPIC = "net.chatmesh.app"
OTHER_APP = "net.chatmesh.lite"  # a second app of the same team, same signing key
DEVICE = "a1" * 32
MESSAGE = PushMessage(
    conversation_id="c-9",
    message_ids=(5,),
    title="Grace",
    body="compiling",
    badge=2,
    collapse_key="c-9",
    ttl_s=3600,
)


def ec_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("apns-pki")
    ca = LocalCA.create(root / "ca", common_name="local apns CA")
    return ca.issue(
        Principal.service("apns"),
        root / "apns",
        dns_names=["localhost"],
        ip_addresses=[ipaddress.ip_address("127.0.0.1")],
    )


@dataclass
class Apns:
    server: LocalApns
    url: str
    key: ec.EllipticCurvePrivateKey
    trust: ssl.SSLContext

    def client(
        self, key: ec.EllipticCurvePrivateKey | None = None, timeout_s: float = 5.0
    ) -> ApnsClient:
        credentials = ApnsCredentials(TEAM, KEY_ID, ec_pem(key or self.key), sandbox=True)
        http = make_client(HttpOptions(timeout_s=timeout_s, verify=self.trust), http2=True)
        return ApnsClient(credentials, http, base_url=self.url)

    async def send(self, device: str, topic: str = TOPIC, **options: object) -> object:
        client = self.client(**options)  # type: ignore[arg-type]
        try:
            return await client.send(ApnsDevice(device, topic), MESSAGE)
        finally:
            await client.aclose()


@pytest.fixture
async def apns(tls_dir: Path) -> AsyncIterator[Apns]:
    key = ec.generate_private_key(ec.SECP256R1())
    local = LocalApns()
    local.add_key(TEAM, KEY_ID, key.public_key(), frozenset({TOPIC, OTHER_APP}))
    trust = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
    async with LocalServer("apns", local.handle, local.faults, tls_dir=tls_dir) as server:
        yield Apns(local, server.url, key, trust)


async def test_a_notification_arrives_intact(apns: Apns) -> None:
    assert await apns.send(DEVICE) == Delivered()
    (accepted,) = apns.server.accepted
    assert accepted.device_token == DEVICE
    assert accepted.headers["apns-topic"] == TOPIC
    assert accepted.headers["apns-push-type"] == "alert"
    assert accepted.headers["apns-priority"] == "10"
    assert accepted.headers["apns-collapse-id"] == "c-9"
    assert int(accepted.headers["apns-expiration"]) > 0
    assert accepted.payload["aps"] == {
        "alert": {"title": "Grace", "body": "compiling"},
        "badge": 2,
        "thread-id": "c-9",
        "sound": "default",
    }
    assert accepted.payload["conversation_id"] == "c-9"
    assert accepted.payload["message_ids"] == "5"


def test_sandbox_and_production_have_their_own_hosts() -> None:
    key = ec_pem(ec.generate_private_key(ec.SECP256R1()))
    assert "sandbox" in ApnsCredentials(TEAM, KEY_ID, key, sandbox=True).default_base_url
    assert "sandbox" not in ApnsCredentials(TEAM, KEY_ID, key).default_base_url


async def test_each_device_is_sent_with_the_topic_of_its_own_app(apns: Apns) -> None:
    assert await apns.send(DEVICE, OTHER_APP) == Delivered()
    assert await apns.send(DEVICE) == Delivered()
    assert [a.headers["apns-topic"] for a in apns.server.accepted] == [OTHER_APP, TOPIC]


@pytest.mark.parametrize(
    "fault",
    [
        Fault(410, "Unregistered"),
        Fault(400, "BadDeviceToken"),
        Fault(400, "DeviceTokenNotForTopic"),
    ],
    ids=["unregistered", "bad-token", "not-for-topic"],
)
async def test_dead_tokens_are_reported(apns: Apns, fault: Fault) -> None:
    apns.server.fail(DEVICE, fault)
    outcome = await apns.send(DEVICE)
    assert isinstance(outcome, CredentialDead), outcome


async def test_a_malformed_token_is_dead_by_apns_own_check(apns: Apns) -> None:
    outcome = await apns.send("not-hex")
    assert isinstance(outcome, CredentialDead)
    assert "BadDeviceToken" in outcome.reason


@pytest.mark.parametrize(
    ("fault", "delay"),
    [
        (Fault(429, "TooManyRequests", retry_after="30"), 30.0),
        (Fault(503, "ServiceUnavailable"), None),
        (Fault(500, "InternalServerError"), None),
    ],
    ids=["throttled", "unavailable", "internal"],
)
async def test_throttling_and_outages_are_retried(
    apns: Apns, fault: Fault, delay: float | None
) -> None:
    apns.server.fail(DEVICE, fault)
    outcome = await apns.send(DEVICE)
    assert isinstance(outcome, RetryAfter), outcome
    assert outcome.seconds == delay


async def test_a_hanging_provider_times_out_as_a_retry(apns: Apns) -> None:
    apns.server.fail(DEVICE, Fault(hang=True))
    outcome = await apns.send(DEVICE, timeout_s=0.5)
    assert isinstance(outcome, RetryAfter)
    assert outcome.reason.startswith("timeout")


async def test_another_error_rejects_the_message(apns: Apns) -> None:
    apns.server.fail(DEVICE, Fault(413, "PayloadTooLarge"))
    outcome = await apns.send(DEVICE)
    assert outcome == Rejected(413, "PayloadTooLarge")


async def test_a_token_signed_by_another_key_is_refused(apns: Apns) -> None:
    outcome = await apns.send(DEVICE, key=ec.generate_private_key(ec.SECP256R1()))
    assert isinstance(outcome, RetryAfter)
    assert "InvalidProviderToken" in outcome.reason
    assert apns.server.accepted == []


def test_provider_tokens_are_renewed_within_the_hour_but_not_too_often() -> None:
    now = [1_000_000.0]
    key = ec_pem(ec.generate_private_key(ec.SECP256R1()))
    tokens = ProviderTokens(ApnsCredentials(TEAM, KEY_ID, key), lambda: now[0])
    first = tokens.current()
    now[0] += TOKEN_MIN_AGE_S - 1
    tokens.refused()
    assert tokens.current() == first  # APNs would answer TooManyProviderTokenUpdates
    now[0] += 2
    tokens.refused()
    second = tokens.current()
    assert second != first
    now[0] += TOKEN_MAX_AGE_S - 1
    assert tokens.current() == second
    now[0] += 1
    assert tokens.current() != second
