"""The Web Push client against the local push service, which decrypts what
it receives with the subscription's private key."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notifysvc.providers.http import HttpOptions, make_client
from notifysvc.providers.local.faults import Fault
from notifysvc.providers.local.server import LocalServer
from notifysvc.providers.local.webpush import LocalWebPush
from notifysvc.providers.message import (
    CredentialDead,
    Delivered,
    Outcome,
    PushMessage,
    Rejected,
    RetryAfter,
)
from notifysvc.providers.webpush import (
    Subscription,
    VapidKey,
    WebPushClient,
    b64url,
    public_point,
)

MESSAGE = PushMessage(
    conversation_id="c-3",
    message_ids=(100, 101),
    title="Linus",
    body="merged ✓",
    badge=1,
    collapse_key="c-3",
    ttl_s=120,
)


def vapid_key() -> VapidKey:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    return VapidKey(pem, "mailto:ops@chatmesh.example")


@dataclass
class WebPush:
    server: LocalWebPush
    url: str
    vapid: VapidKey

    def subscription(self, subscription_id: str) -> Subscription:
        """A browser's subscription: its own key pair and auth secret."""
        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        path = self.server.subscribe(subscription_id, key, auth, self.vapid.public_key())
        return Subscription(self.url + path, b64url(public_point(key.public_key())), b64url(auth))

    async def send(
        self,
        subscription: Subscription,
        *,
        vapid: VapidKey | None = None,
        timeout_s: float = 5.0,
    ) -> Outcome:
        http = make_client(HttpOptions(timeout_s=timeout_s), http2=False)
        client = WebPushClient(vapid or self.vapid, http)
        try:
            return await client.send(subscription, MESSAGE)
        finally:
            await client.aclose()


@pytest.fixture
async def webpush() -> AsyncIterator[WebPush]:
    local = LocalWebPush()
    async with LocalServer("webpush", local.handle, local.faults) as server:
        yield WebPush(local, server.url, vapid_key())


async def test_the_decrypted_payload_is_what_was_sent(webpush: WebPush) -> None:
    subscription = webpush.subscription("s1")
    assert await webpush.send(subscription) == Delivered()
    (accepted,) = webpush.server.accepted
    assert json.loads(accepted.plaintext) == {
        "title": "Linus",
        "body": "merged ✓",
        "badge": 1,
        "data": {"conversation_id": "c-3", "message_ids": "100,101"},
    }
    assert accepted.ttl_s == 120
    assert accepted.urgency == "high"
    assert accepted.topic == "c-3"
    assert accepted.vapid_subject == "mailto:ops@chatmesh.example"


async def test_each_push_is_encrypted_afresh(webpush: WebPush) -> None:
    subscription = webpush.subscription("s1")
    assert await webpush.send(subscription) == Delivered()
    assert await webpush.send(subscription) == Delivered()
    first, second = webpush.server.accepted
    assert first.plaintext == second.plaintext
    assert first.ciphertext != second.ciphertext


@pytest.mark.parametrize("status", [404, 410])
async def test_gone_subscriptions_are_reported(webpush: WebPush, status: int) -> None:
    subscription = webpush.subscription("gone")
    webpush.server.fail("gone", Fault(status))
    outcome = await webpush.send(subscription)
    assert isinstance(outcome, CredentialDead), outcome


@pytest.mark.parametrize(
    ("fault", "delay"),
    [(Fault(429, retry_after="60"), 60.0), (Fault(503), None), (Fault(502, retry_after="5"), 5.0)],
    ids=["throttled", "unavailable", "bad-gateway"],
)
async def test_throttling_and_outages_are_retried(
    webpush: WebPush, fault: Fault, delay: float | None
) -> None:
    subscription = webpush.subscription("busy")
    webpush.server.fail("busy", fault)
    outcome = await webpush.send(subscription)
    assert isinstance(outcome, RetryAfter), outcome
    assert outcome.seconds == delay


async def test_a_hanging_service_times_out_as_a_retry(webpush: WebPush) -> None:
    subscription = webpush.subscription("slow")
    webpush.server.fail("slow", Fault(hang=True))
    outcome = await webpush.send(subscription, timeout_s=0.5)
    assert isinstance(outcome, RetryAfter)
    assert outcome.reason.startswith("timeout")


@pytest.mark.parametrize("status", [400, 413])
async def test_refused_payloads_are_rejected(webpush: WebPush, status: int) -> None:
    subscription = webpush.subscription("s1")
    webpush.server.fail("s1", Fault(status))
    outcome = await webpush.send(subscription)
    assert isinstance(outcome, Rejected)
    assert outcome.status == status


async def test_a_push_signed_by_another_vapid_key_is_refused(webpush: WebPush) -> None:
    subscription = webpush.subscription("s1")
    outcome = await webpush.send(subscription, vapid=vapid_key())
    assert isinstance(outcome, Rejected)
    assert outcome.status == 403
    assert webpush.server.accepted == []


async def test_a_payload_for_other_keys_cannot_be_decrypted(webpush: WebPush) -> None:
    subscription = webpush.subscription("s1")
    stranger = ec.generate_private_key(ec.SECP256R1())
    wrong_keys = Subscription(
        subscription.endpoint, b64url(public_point(stranger.public_key())), subscription.auth
    )
    outcome = await webpush.send(wrong_keys)
    assert isinstance(outcome, Rejected)
    assert outcome.status == 400
    assert webpush.server.accepted == []
