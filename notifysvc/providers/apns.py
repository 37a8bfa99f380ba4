"""APNs over HTTP/2 with token-based (ES256 JWT) provider authentication."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from notifysvc.providers.http import RETRYABLE_STATUSES, exchange, retry_for
from notifysvc.providers.message import (
    CredentialDead,
    Delivered,
    Outcome,
    PushMessage,
    Rejected,
    RetryAfter,
)

PRODUCTION_URL = "https://api.push.apple.com"
SANDBOX_URL = "https://api.sandbox.push.apple.com"
# Apple refuses a provider token older than an hour, and answers
# TooManyProviderTokenUpdates to one replaced more often than every 20 min.
TOKEN_MAX_AGE_S = 50 * 60
TOKEN_MIN_AGE_S = 20 * 60
# apns-priority 10: deliver now (an alert the user should see); 5 would let
# the device batch it for power.
PRIORITY_IMMEDIATE = "10"
MAX_COLLAPSE_ID_BYTES = 64
DEAD_TOKEN_REASONS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"})
STALE_PROVIDER_TOKEN_REASONS = frozenset({"ExpiredProviderToken", "InvalidProviderToken"})


@dataclass(frozen=True, slots=True)
class ApnsCredentials:
    """A signing key from the developer account (.p8), good for every app of
    the team, and the APNs environment a client of it talks to."""

    team_id: str
    key_id: str
    private_key_pem: str
    sandbox: bool = False

    @property
    def default_base_url(self) -> str:
        return SANDBOX_URL if self.sandbox else PRODUCTION_URL


class ProviderTokens:
    """The current provider token, renewed when it nears APNs' one-hour limit
    and, when APNs says it is stale, only if it is old enough to replace."""

    def __init__(self, credentials: ApnsCredentials, clock: Callable[[], float]) -> None:
        self._credentials = credentials
        self._clock = clock
        self._token = ""
        self._issued_at = 0.0

    def current(self) -> str:
        now = self._clock()
        if not self._token or now - self._issued_at >= TOKEN_MAX_AGE_S:
            self._issue(now)
        return self._token

    def refused(self) -> None:
        if self._clock() - self._issued_at >= TOKEN_MIN_AGE_S:
            self._token = ""

    def _issue(self, now: float) -> None:
        self._issued_at = now
        self._token = jwt.encode(
            {"iss": self._credentials.team_id, "iat": int(now)},
            self._credentials.private_key_pem,
            algorithm="ES256",
            headers={"kid": self._credentials.key_id},
        )


@dataclass(frozen=True, slots=True)
class ApnsDevice:
    """A device token and the app (bundle id, the apns-topic) it belongs to."""

    token: str
    topic: str


class ApnsClient:
    """Sends alerts to device tokens of one environment, for any app of the
    key's team. ``client`` must speak
    HTTP/2 (APNs refuses HTTP/1.1); it is owned and closed here."""

    def __init__(
        self,
        credentials: ApnsCredentials,
        client: httpx.AsyncClient,
        *,
        base_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = credentials
        self._client = client
        self._clock = clock
        self._tokens = ProviderTokens(credentials, clock)
        self._base_url = (base_url or credentials.default_base_url).rstrip("/")

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, credential: ApnsDevice, message: PushMessage) -> Outcome:
        now = self._clock()
        expiration = int(now) + message.ttl_s if message.ttl_s > 0 else 0
        headers = {
            "authorization": f"bearer {self._tokens.current()}",
            "apns-topic": credential.topic,
            "apns-push-type": "alert",
            "apns-priority": PRIORITY_IMMEDIATE,
            "apns-expiration": str(expiration),
            "apns-collapse-id": message.collapse_key.encode()[:MAX_COLLAPSE_ID_BYTES].decode(
                errors="ignore"
            ),
        }
        request = self._client.build_request(
            "POST",
            f"{self._base_url}/3/device/{credential.token}",
            content=json.dumps(apns_payload(message)).encode(),
            headers=headers,
        )
        result = await exchange(self._client, request)
        if isinstance(result, RetryAfter):
            return result
        return self._outcome(result)

    def _outcome(self, response: httpx.Response) -> Outcome:
        status = response.status_code
        if status == 200:
            return Delivered()
        reason = _reason(response)
        if status == 410 or (status == 400 and reason in DEAD_TOKEN_REASONS):
            return CredentialDead(f"{status} {reason}")
        if status == 403 and reason in STALE_PROVIDER_TOKEN_REASONS:
            self._tokens.refused()
            return RetryAfter(None, f"{status} {reason}")
        if status in RETRYABLE_STATUSES:
            return retry_for(response, f"{status} {reason}", self._clock())
        return Rejected(status, reason)


def apns_payload(message: PushMessage) -> dict[str, Any]:
    alert: dict[str, str] = {}
    if message.title is not None:
        alert["title"] = message.title
    if message.body is not None:
        alert["body"] = message.body
    if not alert:
        # Previews off: the app's localized generic text, never the message's.
        alert["loc-key"] = "NEW_MESSAGE"
    aps: dict[str, Any] = {"alert": alert, "thread-id": message.collapse_key, "sound": "default"}
    if message.badge is not None:
        aps["badge"] = message.badge
    return {"aps": aps, **message.data()}


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason", ""))
    except (ValueError, AttributeError):
        return ""
