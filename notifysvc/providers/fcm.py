"""FCM HTTP v1: one POST per message, authorized by an OAuth2 access token
that a Google service account obtains with the JWT-bearer grant (RFC 7523)."""

from __future__ import annotations

import asyncio
import json
import logging
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

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://fcm.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Google caps an assertion's lifetime at one hour.
ASSERTION_LIFETIME_S = 3600
# An access token is replaced this long before it expires, so that a request
# in flight never carries one that lapses on the way.
TOKEN_REFRESH_MARGIN_S = 300
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
# Error codes that say the registration token itself is gone or not ours.
DEAD_TOKEN_CODES = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """The fields of a Google service-account key file that signing needs."""

    project_id: str
    client_email: str
    private_key_pem: str
    token_uri: str
    private_key_id: str | None = None

    @classmethod
    def from_json(cls, text: str) -> ServiceAccount:
        key = json.loads(text)
        return cls(
            project_id=key["project_id"],
            client_email=key["client_email"],
            private_key_pem=key["private_key"],
            token_uri=key["token_uri"],
            private_key_id=key.get("private_key_id"),
        )


class AccessTokenError(Exception):
    """The token endpoint refused the service account: a configuration fault."""


class AccessTokens:
    """OAuth2 access tokens for one service account, cached until shortly
    before they expire; concurrent callers share one refresh."""

    def __init__(
        self,
        account: ServiceAccount,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._account = account
        self._client = client
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._token = None

    async def get(self) -> str:
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at - TOKEN_REFRESH_MARGIN_S:
                await self._refresh()
            assert self._token is not None
            return self._token

    def _assertion(self, now: int) -> str:
        claims = {
            "iss": self._account.client_email,
            "scope": SCOPE,
            "aud": self._account.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
        }
        headers = {"kid": self._account.private_key_id} if self._account.private_key_id else None
        return jwt.encode(claims, self._account.private_key_pem, "RS256", headers=headers)

    async def _refresh(self) -> None:
        now = int(self._clock())
        response = await self._client.post(
            self._account.token_uri,
            data={"grant_type": JWT_BEARER_GRANT, "assertion": self._assertion(now)},
        )
        if response.status_code != 200:
            raise AccessTokenError(f"token endpoint answered {response.status_code}")
        body = response.json()
        self._token = str(body["access_token"])
        self._expires_at = now + float(body.get("expires_in", ASSERTION_LIFETIME_S))


class FcmClient:
    """Sends to FCM registration tokens. ``client`` is owned and closed here."""

    def __init__(
        self,
        account: ServiceAccount,
        client: httpx.AsyncClient,
        *,
        base_url: str = DEFAULT_BASE_URL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._tokens = AccessTokens(account, client, clock=clock)
        self._clock = clock
        self._url = f"{base_url.rstrip('/')}/v1/projects/{account.project_id}/messages:send"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, credential: str, message: PushMessage) -> Outcome:
        try:
            access_token = await self._tokens.get()
        except (AccessTokenError, httpx.HTTPError, KeyError, ValueError) as exc:
            # Every message fails the same way until the key is fixed: loud,
            # and retried, since no device credential is at fault.
            log.error("fcm access token unavailable", extra={"fields": {"error": repr(exc)}})
            return RetryAfter(None, "fcm access token unavailable")
        request = self._client.build_request(
            "POST",
            self._url,
            json={"message": fcm_message(credential, message)},
            headers={"authorization": f"Bearer {access_token}"},
        )
        result = await exchange(self._client, request)
        if isinstance(result, RetryAfter):
            return result
        return self._outcome(result)

    def _outcome(self, response: httpx.Response) -> Outcome:
        status = response.status_code
        if status == 200:
            return Delivered()
        error = _error(response)
        code = _fcm_error_code(error)
        reason = f"{status} {error.get('status', '')} {code or ''}".strip()
        if status == 404 or code in DEAD_TOKEN_CODES:
            return CredentialDead(reason)
        if status == 400 and _token_field_violated(error):
            return CredentialDead(reason)
        if status == 401:
            # The access token expired early or was revoked: fetch a new one.
            self._tokens.invalidate()
            return RetryAfter(0.0, reason)
        if status in RETRYABLE_STATUSES:
            return retry_for(response, reason, self._clock())
        return Rejected(status, reason)


def fcm_message(token: str, message: PushMessage) -> dict[str, Any]:
    """The v1 ``Message`` resource for one registration token."""
    android: dict[str, Any] = {
        "ttl": f"{message.ttl_s}s",
        "collapse_key": message.collapse_key,
        "priority": "high",
    }
    body: dict[str, Any] = {"token": token, "data": message.data(), "android": android}
    if message.body is not None:
        notification = {"title": message.title or "", "body": message.body}
        body["notification"] = notification
        android["notification"] = {"tag": message.collapse_key}
        if message.badge is not None:
            android["notification"]["notification_count"] = message.badge
    return body


def _error(response: httpx.Response) -> dict[str, Any]:
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _fcm_error_code(error: dict[str, Any]) -> str | None:
    for detail in error.get("details", []):
        if isinstance(detail, dict) and detail.get("@type") == FCM_ERROR_TYPE:
            return str(detail.get("errorCode"))
    return None


def _token_field_violated(error: dict[str, Any]) -> bool:
    if error.get("status") != "INVALID_ARGUMENT":
        return False
    for detail in error.get("details", []):
        if isinstance(detail, dict) and detail.get("@type") == BAD_REQUEST_TYPE:
            for violation in detail.get("fieldViolations", []):
                if violation.get("field") == "message.token":
                    return True
    return False
