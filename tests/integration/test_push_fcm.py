"""The FCM client against the local FCM: OAuth2 JWT-bearer, then v1 sends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from notifysvc.providers.fcm import FcmClient, ServiceAccount
from notifysvc.providers.http import HttpOptions, make_client
from notifysvc.providers.local.faults import Fault
from notifysvc.providers.local.fcm import TOKEN_PATH, LocalFcm
from notifysvc.providers.local.server import LocalServer
from notifysvc.providers.message import (
    CredentialDead,
    Delivered,
    PushMessage,
    Rejected,
    RetryAfter,
)

PROJECT = "chatmesh-test"
EMAIL = "push@chatmesh-test.iam.gserviceaccount.com"
MESSAGE = PushMessage(
    conversation_id="c-1",
    message_ids=(41, 42),
    title="Ada",
    body="see you at 6",
    badge=3,
    collapse_key="c-1",
    ttl_s=600,
)


def rsa_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@dataclass
class Fcm:
    server: LocalFcm
    url: str
    key: rsa.RSAPrivateKey

    def account(self, key: rsa.RSAPrivateKey | None = None) -> ServiceAccount:
        document = {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "k1",
            "private_key": rsa_pem(key or self.key),
            "client_email": EMAIL,
            "token_uri": self.url + TOKEN_PATH,
        }
        return ServiceAccount.from_json(json.dumps(document))

    def client(self, key: rsa.RSAPrivateKey | None = None, timeout_s: float = 5.0) -> FcmClient:
        http = make_client(HttpOptions(timeout_s=timeout_s), http2=False)
        return FcmClient(self.account(key), http, base_url=self.url)


@pytest.fixture(scope="module")
def service_account_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def fcm(service_account_key: rsa.RSAPrivateKey) -> AsyncIterator[Fcm]:
    local = LocalFcm()
    local.add_account(EMAIL, PROJECT, service_account_key.public_key())
    async with LocalServer("fcm", local.handle, local.faults) as server:
        yield Fcm(local, server.url, service_account_key)


async def test_a_notification_arrives_intact(fcm: Fcm) -> None:
    client = fcm.client()
    try:
        assert await client.send("device-token-1", MESSAGE) == Delivered()
        assert await client.send("device-token-2", MESSAGE) == Delivered()
    finally:
        await client.aclose()
    first, second = fcm.server.accepted
    assert first.project_id == PROJECT
    assert first.token == "device-token-1"
    assert first.message["notification"] == {"title": "Ada", "body": "see you at 6"}
    assert first.message["data"] == {"conversation_id": "c-1", "message_ids": "41,42"}
    assert first.message["android"]["ttl"] == "600s"
    assert first.message["android"]["collapse_key"] == "c-1"
    assert second.token == "device-token-2"


async def test_without_previews_no_text_leaves(fcm: Fcm) -> None:
    client = fcm.client()
    try:
        hidden = PushMessage("c-1", (7,), title=None, body=None, badge=None, collapse_key="c-1")
        assert await client.send("device-token-1", hidden) == Delivered()
    finally:
        await client.aclose()
    (accepted,) = fcm.server.accepted
    assert "notification" not in accepted.message
    assert accepted.message["data"] == {"conversation_id": "c-1", "message_ids": "7"}


@pytest.mark.parametrize(
    "fault",
    [
        Fault(404, "UNREGISTERED"),
        Fault(400, "INVALID_ARGUMENT"),
        Fault(403, "SENDER_ID_MISMATCH"),
    ],
    ids=["unregistered", "invalid-token", "sender-mismatch"],
)
async def test_dead_tokens_are_reported(fcm: Fcm, fault: Fault) -> None:
    fcm.server.fail("dead-token", fault)
    client = fcm.client()
    try:
        outcome = await client.send("dead-token", MESSAGE)
    finally:
        await client.aclose()
    assert isinstance(outcome, CredentialDead), outcome
    assert fcm.server.accepted == []


@pytest.mark.parametrize(
    ("fault", "delay"),
    [
        (Fault(429, "QUOTA_EXCEEDED", retry_after="17"), 17.0),
        (Fault(503, "UNAVAILABLE"), None),
        (Fault(500, "INTERNAL", retry_after="2"), 2.0),
    ],
    ids=["quota", "unavailable", "internal"],
)
async def test_throttling_and_outages_are_retried(
    fcm: Fcm, fault: Fault, delay: float | None
) -> None:
    fcm.server.fail("busy-token", fault)
    client = fcm.client()
    try:
        outcome = await client.send("busy-token", MESSAGE)
    finally:
        await client.aclose()
    assert isinstance(outcome, RetryAfter), outcome
    assert outcome.seconds == delay


async def test_a_hanging_provider_times_out_as_a_retry(fcm: Fcm) -> None:
    fcm.server.fail("slow-token", Fault(hang=True))
    client = fcm.client(timeout_s=0.5)
    try:
        outcome = await client.send("slow-token", MESSAGE)
    finally:
        await client.aclose()
    assert isinstance(outcome, RetryAfter)
    assert outcome.seconds is None
    assert outcome.reason.startswith("timeout")


async def test_another_error_rejects_the_message(fcm: Fcm) -> None:
    fcm.server.fail("token", Fault(403, "THIRD_PARTY_AUTH_ERROR"))
    client = fcm.client()
    try:
        outcome = await client.send("token", MESSAGE)
    finally:
        await client.aclose()
    assert isinstance(outcome, Rejected)
    assert outcome.status == 403


async def test_an_assertion_signed_by_another_key_is_refused(fcm: Fcm) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client = fcm.client(key=impostor)
    try:
        outcome = await client.send("device-token-1", MESSAGE)
    finally:
        await client.aclose()
    assert isinstance(outcome, RetryAfter)
    assert "access token" in outcome.reason
    assert fcm.server.accepted == []


async def test_the_access_token_is_fetched_once_and_reused(fcm: Fcm) -> None:
    client = fcm.client()
    try:
        for n in range(3):
            assert await client.send(f"device-{n}", MESSAGE) == Delivered()
    finally:
        await client.aclose()
    assert fcm.server.access_tokens_issued == 1
