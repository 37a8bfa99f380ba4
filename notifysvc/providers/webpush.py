"""Web Push (RFC 8030) with VAPID (RFC 8292) and payloads encrypted per
RFC 8291, so that the push service never reads what it carries."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import http_ece
import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notifysvc.providers.http import exchange, retry_for
from notifysvc.providers.message import (
    CredentialDead,
    Delivered,
    Outcome,
    PushMessage,
    Rejected,
    RetryAfter,
)

# RFC 8292 caps a VAPID token at 24 h; 12 h leaves room for clock skew, and
# a token is reused for one origin until an hour before it lapses.
VAPID_LIFETIME_S = 12 * 3600
VAPID_RENEW_MARGIN_S = 3600
# RFC 8030 §5.4: a Topic is at most 32 characters of the URL-safe base64 alphabet.
MAX_TOPIC_CHARS = 32
# RFC 8291 §4: one record of at most 4096 bytes, 103 of them the header and tag.
MAX_PLAINTEXT_BYTES = 3993


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


@dataclass(frozen=True, slots=True)
class Subscription:
    """A browser's ``PushSubscription``: where to POST and whose keys to encrypt for."""

    endpoint: str
    p256dh: str  # the user agent's P-256 public key, base64url
    auth: str  # its 16-byte authentication secret, base64url


@dataclass(frozen=True, slots=True)
class VapidKey:
    """Our application server key. ``subject`` is the contact a push service
    may use about our traffic: a ``mailto:`` or ``https:`` URI."""

    private_key_pem: str
    subject: str

    def public_key(self) -> str:
        key = serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return b64url(public_point(key.public_key()))


def encrypt(plaintext: bytes, subscription: Subscription) -> bytes:
    """The ``aes128gcm`` body for one subscription: a fresh ephemeral key and
    salt every time, as RFC 8291 requires."""
    return bytes(
        http_ece.encrypt(
            plaintext,
            salt=os.urandom(16),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            dh=b64url_decode(subscription.p256dh),
            auth_secret=b64url_decode(subscription.auth),
            version="aes128gcm",
        )
    )


def topic_for(collapse_key: str) -> str:
    if len(collapse_key) <= MAX_TOPIC_CHARS and all(
        c.isascii() and (c.isalnum() or c in "-_") for c in collapse_key
    ):
        return collapse_key
    return b64url(hashlib.sha256(collapse_key.encode()).digest())[:MAX_TOPIC_CHARS]


def webpush_payload(message: PushMessage) -> bytes:
    """What the service worker receives; no text when previews are off."""
    payload: dict[str, object] = {"data": message.data()}
    if message.body is not None:
        payload["title"] = message.title or ""
        payload["body"] = message.body
    if message.badge is not None:
        payload["badge"] = message.badge
    return json.dumps(payload, separators=(",", ":")).encode()


class WebPushClient:
    """Sends to browser subscriptions. ``client`` is owned and closed here."""

    def __init__(
        self,
        vapid: VapidKey,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._vapid = vapid
        self._public_key = vapid.public_key()
        self._client = client
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    def _vapid_token(self, endpoint: str) -> str:
        parts = urllib.parse.urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc}"
        now = self._clock()
        cached = self._tokens.get(origin)
        if cached is not None and now < cached[1] - VAPID_RENEW_MARGIN_S:
            return cached[0]
        expires = int(now) + VAPID_LIFETIME_S
        token = jwt.encode(
            {"aud": origin, "exp": expires, "sub": self._vapid.subject},
            self._vapid.private_key_pem,
            algorithm="ES256",
        )
        self._tokens[origin] = (token, expires)
        return token

    async def send(self, credential: Subscription, message: PushMessage) -> Outcome:
        plaintext = webpush_payload(message)
        if len(plaintext) > MAX_PLAINTEXT_BYTES:
            return Rejected(413, "payload exceeds one Web Push record")
        try:
            body = encrypt(plaintext, credential)
        except (ValueError, http_ece.ECEException) as exc:
            # Keys a browser could not have made: the subscription is unusable.
            return CredentialDead(f"bad subscription keys: {exc}")
        request = self._client.build_request(
            "POST",
            credential.endpoint,
            content=body,
            headers={
                "authorization": (
                    f"vapid t={self._vapid_token(credential.endpoint)}, k={self._public_key}"
                ),
                "content-encoding": "aes128gcm",
                "content-type": "application/octet-stream",
                "ttl": str(message.ttl_s),
                "urgency": "high",
                "topic": topic_for(message.collapse_key),
            },
        )
        result = await exchange(self._client, request)
        if isinstance(result, RetryAfter):
            return result
        status = result.status_code
        if status in (200, 201, 202):
            return Delivered()
        if status in (404, 410):
            return CredentialDead(f"{status} subscription gone")
        if status == 429 or status >= 500:
            return retry_for(result, str(status), self._clock())
        return Rejected(status, result.text[:200])
