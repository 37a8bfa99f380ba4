"""A local APNs: HTTP/2 only, provider tokens verified with the signing key
registered for their key id, and Apple's header and payload checks."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from notifysvc.providers.local.asgi import Request, Response
from notifysvc.providers.local.faults import Fault, Faults

DEVICE_PATH = re.compile(r"^/3/device/(?P<token>[^/]+)$")
DEVICE_TOKEN = re.compile(r"^[0-9a-fA-F]{64}$")
PROVIDER_TOKEN_MAX_AGE_S = 3600
PUSH_TYPES = frozenset({"alert", "background", "voip", "complication", "fileprovider", "mdm"})
MAX_PAYLOAD_BYTES = 4096


@dataclass(frozen=True, slots=True)
class AcceptedApns:
    device_token: str
    headers: dict[str, str]
    payload: dict[str, Any]
    received_at: float = 0.0  # Unix seconds


@dataclass(frozen=True, slots=True)
class _SigningKey:
    team_id: str
    public_key: ec.EllipticCurvePublicKey
    topics: frozenset[str]


class LocalApns:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.faults = Faults()
        self.accepted: list[AcceptedApns] = []
        self._clock = clock
        self._keys: dict[str, _SigningKey] = {}

    def add_key(
        self,
        team_id: str,
        key_id: str,
        public_key: ec.EllipticCurvePublicKey,
        topics: frozenset[str],
    ) -> None:
        self._keys[key_id] = _SigningKey(team_id, public_key, topics)

    def fail(self, device_token: str, fault: Fault) -> None:
        self.faults.set(device_token, fault)

    async def handle(self, request: Request) -> Response:
        if request.http_version != "2":
            # APNs speaks nothing but HTTP/2.
            return Response(505)
        match = DEVICE_PATH.match(request.path)
        if match is None:
            return _error(404, "BadPath")
        if request.method != "POST":
            return _error(405, "MethodNotAllowed")
        key, refusal = self._authenticate(request.headers.get("authorization", ""))
        if refusal:
            return _error(403, refusal)
        assert key is not None
        topic = request.headers.get("apns-topic")
        if not topic:
            return _error(400, "MissingTopic")
        if key.topics and topic not in key.topics:
            return _error(400, "TopicDisallowed")
        if request.headers.get("apns-push-type", "alert") not in PUSH_TYPES:
            return _error(400, "InvalidPushType")
        if request.headers.get("apns-priority", "10") not in ("1", "5", "10"):
            return _error(400, "BadPriority")
        if not request.headers.get("apns-expiration", "0").isdigit():
            return _error(400, "BadExpirationDate")
        if len(request.headers.get("apns-collapse-id", "").encode()) > 64:
            return _error(400, "BadCollapseId")
        device_token = match["token"]
        if not DEVICE_TOKEN.match(device_token):
            return _error(400, "BadDeviceToken")
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return _error(413, "PayloadTooLarge")
        try:
            payload = request.json()
        except ValueError:
            return _error(400, "BadPayload")
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            return _error(400, "PayloadEmpty")
        fault = self.faults.get(device_token)
        if fault is not None:
            if fault.hang:
                await self.faults.hang()
            return _fault_response(fault, self._clock())
        self.accepted.append(
            AcceptedApns(device_token, dict(request.headers), payload, self._clock())
        )
        apns_id = request.headers.get("apns-id") or str(uuid.uuid4()).upper()
        return Response(200, headers=(("apns-id", apns_id),))

    def _authenticate(self, authorization: str) -> tuple[_SigningKey | None, str]:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None, "MissingProviderToken"
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys[header["kid"]]
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=["ES256"],
                options={"require": ["iss", "iat"], "verify_iat": False},
            )
        except (jwt.InvalidTokenError, KeyError):
            return None, "InvalidProviderToken"
        if claims["iss"] != key.team_id:
            return None, "InvalidProviderToken"
        if self._clock() - float(claims["iat"]) > PROVIDER_TOKEN_MAX_AGE_S:
            return None, "ExpiredProviderToken"
        return key, ""


def _error(status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response.json(status, {"reason": reason}, headers)


def _fault_response(fault: Fault, now: float) -> Response:
    headers = (("retry-after", fault.retry_after),) if fault.retry_after else ()
    if fault.body is not None:
        return Response(fault.status, fault.body.encode(), headers)
    if fault.status == 410:
        # Apple says since when the token has been invalid, in milliseconds.
        body = {"reason": fault.reason or "Unregistered", "timestamp": int(now * 1000)}
        return Response.json(410, body, headers)
    return _error(fault.status, fault.reason, headers)
