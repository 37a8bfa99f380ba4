"""A local Web Push service that is also the browser behind each
subscription: it checks VAPID as a push service does, then decrypts the
payload with the subscription's private key as the user agent would."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import http_ece
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from notifysvc.providers.local.asgi import Request, Response
from notifysvc.providers.local.faults import Fault, Faults
from notifysvc.providers.webpush import b64url_decode

PUSH_PATH = re.compile(r"^/push/(?P<id>[A-Za-z0-9_-]+)$")
VAPID_HEADER = re.compile(r"^vapid\s+(?P<params>.+)$", re.IGNORECASE)
MAX_VAPID_LIFETIME_S = 24 * 3600
MAX_BODY_BYTES = 4096
URGENCIES = frozenset({"very-low", "low", "normal", "high"})


@dataclass(frozen=True, slots=True)
class AcceptedWebPush:
    subscription_id: str
    plaintext: bytes
    ttl_s: int
    urgency: str
    topic: str | None
    vapid_subject: str
    ciphertext: bytes
    received_at: float = 0.0  # Unix seconds


@dataclass(frozen=True, slots=True)
class _Subscriber:
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    application_server_key: str | None


class LocalWebPush:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.faults = Faults()
        self.accepted: list[AcceptedWebPush] = []
        self._clock = clock
        self._subscribers: dict[str, _Subscriber] = {}

    def subscribe(
        self,
        subscription_id: str,
        private_key: ec.EllipticCurvePrivateKey,
        auth_secret: bytes,
        application_server_key: str | None = None,
    ) -> str:
        """Registers a browser's keys; returns the endpoint path. With an
        ``application_server_key`` only pushes signed by it are accepted,
        as ``pushManager.subscribe({applicationServerKey})`` asks."""
        self._subscribers[subscription_id] = _Subscriber(
            private_key, auth_secret, application_server_key
        )
        return f"/push/{subscription_id}"

    def fail(self, subscription_id: str, fault: Fault) -> None:
        self.faults.set(subscription_id, fault)

    async def handle(self, request: Request) -> Response:
        match = PUSH_PATH.match(request.path)
        if match is None or request.method != "POST":
            return Response(404)
        subscription_id = match["id"]
        subscriber = self._subscribers.get(subscription_id)
        if subscriber is None:
            return Response(404)
        subject, refusal = self._verify_vapid(request, subscriber)
        if refusal:
            return Response(401 if refusal == "missing" else 403, refusal.encode())
        ttl = request.headers.get("ttl", "")
        if not ttl.isdigit():
            return Response(400, b"TTL header required")
        urgency = request.headers.get("urgency", "normal")
        if urgency not in URGENCIES:
            return Response(400, b"bad Urgency")
        if len(request.body) > MAX_BODY_BYTES:
            return Response(413)
        if request.headers.get("content-encoding") != "aes128gcm":
            return Response(415, b"Content-Encoding must be aes128gcm")
        fault = self.faults.get(subscription_id)
        if fault is not None:
            if fault.hang:
                await self.faults.hang()
            headers = (("retry-after", fault.retry_after),) if fault.retry_after else ()
            body = fault.body if fault.body is not None else fault.reason
            return Response(fault.status, body.encode(), headers)
        try:
            plaintext = http_ece.decrypt(
                request.body,
                private_key=subscriber.private_key,
                auth_secret=subscriber.auth_secret,
                version="aes128gcm",
            )
        except http_ece.ECEException as exc:
            return Response(400, f"cannot decrypt: {exc}".encode())
        self.accepted.append(
            AcceptedWebPush(
                subscription_id,
                bytes(plaintext),
                int(ttl),
                urgency,
                request.headers.get("topic"),
                subject,
                request.body,
                self._clock(),
            )
        )
        return Response(201, headers=(("location", f"/message/{len(self.accepted)}"),))

    def _verify_vapid(self, request: Request, subscriber: _Subscriber) -> tuple[str, str]:
        """(sub claim, refusal) per RFC 8292 §2-§3."""
        match = VAPID_HEADER.match(request.headers.get("authorization", ""))
        if match is None:
            return "", "missing"
        params = dict(
            part.strip().split("=", 1) for part in match["params"].split(",") if "=" in part
        )
        token, public_key = params.get("t", ""), params.get("k", "")
        if subscriber.application_server_key and public_key != subscriber.application_server_key:
            return "", "key differs from the subscription's applicationServerKey"
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), b64url_decode(public_key)
            )
            claims = jwt.decode(
                token,
                key,
                algorithms=["ES256"],
                audience=f"http://{request.headers.get('host', '')}",
                options={"require": ["aud", "exp"]},
            )
        except (jwt.InvalidTokenError, ValueError):
            return "", "invalid VAPID token"
        if float(claims["exp"]) > self._clock() + MAX_VAPID_LIFETIME_S:
            return "", "VAPID token expires more than 24 h ahead"
        subject = str(claims.get("sub", ""))
        if not subject.startswith(("mailto:", "https:")):
            return "", "VAPID sub must be a mailto: or https: URI"
        return subject, ""
