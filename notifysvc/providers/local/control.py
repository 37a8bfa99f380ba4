"""The local providers' control endpoint: what a development cluster's
pushes looked like on arrival, and scripted failures.

- ``GET /pushes``: every notification accepted so far, all providers, in a
  common shape (``provider``, ``key``: the token or subscription id,
  ``title``, ``body``, ``badge``, ``data``, ``collapse_key``,
  ``received_at``), plus the raw request for each provider's own checks;
  ``GET /pushes/count``: how many.
- ``POST /faults`` ``{"provider", "key", "status", "reason", "retry_after",
  "hang", "times", "body"}`` (see ``Fault``): how the provider answers that credential next;
  ``POST /faults/clear`` ``{"provider", "key"}`` ends it.
- ``POST /webpush/subscriptions``: a new browser subscription (endpoint,
  p256dh, auth), whose pushes the local Web Push service decrypts.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from notifysvc.providers.local.apns import LocalApns
from notifysvc.providers.local.asgi import Request, Response
from notifysvc.providers.local.faults import Fault, Faults
from notifysvc.providers.local.fcm import LocalFcm
from notifysvc.providers.local.webpush import LocalWebPush
from notifysvc.providers.webpush import public_point


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class LocalControl:
    def __init__(
        self,
        *,
        fcm: LocalFcm | None,
        apns: LocalApns | None,
        webpush: LocalWebPush | None,
        webpush_url: str | None,
    ) -> None:
        self._fcm = fcm
        self._apns = apns
        self._webpush = webpush
        self._webpush_url = webpush_url
        self.faults = Faults()  # the control endpoint's own: never set

    async def handle(self, request: Request) -> Response:
        route = (request.method, request.path)
        try:
            if route == ("GET", "/pushes"):
                return Response.json(200, {"pushes": self.pushes()})
            if route == ("GET", "/pushes/count"):
                return Response.json(200, {"count": self.count()})
            if route == ("POST", "/faults"):
                return self._set_fault(json.loads(request.body or b"{}"))
            if route == ("POST", "/faults/clear"):
                return self._clear_fault(json.loads(request.body or b"{}"))
            if route == ("POST", "/webpush/subscriptions"):
                return self._subscribe()
        except (ValueError, KeyError, TypeError) as exc:
            return Response.json(400, {"error": str(exc)})
        return Response(404)

    def count(self) -> int:
        return sum(
            len(server.accepted)
            for server in (self._fcm, self._apns, self._webpush)
            if server is not None
        )

    def pushes(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for fcm in self._fcm.accepted if self._fcm else []:
            notification = fcm.message.get("notification", {})
            android = fcm.message.get("android", {})
            found.append(
                {
                    "provider": "fcm",
                    "key": fcm.token,
                    "title": notification.get("title"),
                    "body": notification.get("body"),
                    "badge": android.get("notification", {}).get("notification_count"),
                    "data": fcm.message.get("data", {}),
                    "collapse_key": android.get("collapse_key"),
                    "received_at": fcm.received_at,
                    "request": fcm.message,
                }
            )
        for apns in self._apns.accepted if self._apns else []:
            aps = apns.payload.get("aps", {})
            alert = aps.get("alert", {})
            found.append(
                {
                    "provider": "apns",
                    "key": apns.device_token,
                    "title": alert.get("title"),
                    "body": alert.get("body"),
                    "badge": aps.get("badge"),
                    "data": {k: v for k, v in apns.payload.items() if k != "aps"},
                    "collapse_key": apns.headers.get("apns-collapse-id"),
                    "received_at": apns.received_at,
                    "request": {"headers": apns.headers, "payload": apns.payload},
                }
            )
        for push in self._webpush.accepted if self._webpush else []:
            payload = json.loads(push.plaintext)
            found.append(
                {
                    "provider": "webpush",
                    "key": push.subscription_id,
                    "title": payload.get("title"),
                    "body": payload.get("body"),
                    "badge": payload.get("badge"),
                    "data": payload.get("data", {}),
                    "collapse_key": push.topic,
                    "received_at": push.received_at,
                    "request": {"payload": payload, "ttl": push.ttl_s, "urgency": push.urgency},
                }
            )
        return sorted(found, key=lambda p: p["received_at"])

    def _faults_of(self, provider: str) -> Faults:
        server = {"fcm": self._fcm, "apns": self._apns, "webpush": self._webpush}.get(provider)
        if server is None:
            raise ValueError(f"no local {provider!r} provider")
        return server.faults

    def _set_fault(self, spec: dict[str, Any]) -> Response:
        fault = Fault(
            status=int(spec.get("status", 0)),
            reason=str(spec.get("reason", "")),
            retry_after=spec.get("retry_after"),
            hang=bool(spec.get("hang", False)),
            times=spec.get("times"),
            body=spec.get("body"),
        )
        self._faults_of(spec["provider"]).set(spec["key"], fault)
        return Response(204)

    def _clear_fault(self, spec: dict[str, Any]) -> Response:
        self._faults_of(spec["provider"]).clear(spec["key"])
        return Response(204)

    def _subscribe(self) -> Response:
        if self._webpush is None or self._webpush_url is None:
            raise ValueError("no local webpush provider")
        key = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        path = self._webpush.subscribe(secrets.token_urlsafe(12), key, auth)
        return Response.json(
            201,
            {
                "endpoint": self._webpush_url + path,
                "p256dh": _b64url(public_point(key.public_key())),
                "auth": _b64url(auth),
            },
        )
