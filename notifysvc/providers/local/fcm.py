"""A local FCM: the OAuth2 token endpoint of a Google service account and
the HTTP v1 ``messages:send`` method, each checked as Google checks them."""

from __future__ import annotations

import re
import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from notifysvc.providers.fcm import BAD_REQUEST_TYPE, FCM_ERROR_TYPE, JWT_BEARER_GRANT, SCOPE
from notifysvc.providers.local.asgi import Request, Response
from notifysvc.providers.local.faults import Fault, Faults

TOKEN_PATH = "/token"
ACCESS_TOKEN_LIFETIME_S = 3600
# Google refuses assertions valid for more than an hour, and allows a little skew.
MAX_ASSERTION_LIFETIME_S = 3600
CLOCK_SKEW_S = 300
SEND_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
DURATION = re.compile(r"^\d+(\.\d{1,9})?s$")

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass(frozen=True, slots=True)
class AcceptedFcm:
    project_id: str
    token: str
    message: dict[str, Any]
    received_at: float = 0.0  # Unix seconds


@dataclass(slots=True)
class _Account:
    project_id: str
    public_key: rsa.RSAPublicKey
    access_tokens: dict[str, float] = field(default_factory=dict)


class LocalFcm:
    """Knows service accounts by ``client_email``; their ``token_uri`` is
    ``<this server's URL>/token``, as an assertion's ``aud`` must say."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.faults = Faults()
        self.accepted: list[AcceptedFcm] = []
        self._clock = clock
        self._accounts: dict[str, _Account] = {}
        self.access_tokens_issued = 0

    def add_account(self, client_email: str, project_id: str, public_key: rsa.RSAPublicKey) -> None:
        self._accounts[client_email] = _Account(project_id, public_key)

    def fail(self, token: str, fault: Fault) -> None:
        self.faults.set(token, fault)

    async def handle(self, request: Request) -> Response:
        if request.method == "POST" and request.path == TOKEN_PATH:
            return self._token(request)
        match = SEND_PATH.match(request.path)
        if request.method == "POST" and match:
            return await self._send(request, match["project"])
        return _error(404, "Method not found.")

    def _token(self, request: Request) -> Response:
        form = dict(urllib.parse.parse_qsl(request.body.decode()))
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return Response.json(400, {"error": "unsupported_grant_type"})
        assertion = form.get("assertion", "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            account = self._accounts[unverified["iss"]]
            claims = jwt.decode(
                assertion,
                account.public_key,
                algorithms=["RS256"],
                audience=f"http://{request.headers.get('host', '')}{TOKEN_PATH}",
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
                leeway=CLOCK_SKEW_S,
            )
        except (jwt.InvalidTokenError, KeyError):
            return Response.json(
                400, {"error": "invalid_grant", "error_description": "Invalid JWT"}
            )
        if claims["exp"] - claims["iat"] > MAX_ASSERTION_LIFETIME_S:
            return Response.json(
                400, {"error": "invalid_grant", "error_description": "exp too far"}
            )
        if SCOPE not in str(claims["scope"]).split():
            return Response.json(400, {"error": "invalid_scope"})
        access_token = "ya29.local-" + secrets.token_urlsafe(24)
        account.access_tokens[access_token] = self._clock() + ACCESS_TOKEN_LIFETIME_S
        self.access_tokens_issued += 1
        return Response.json(
            200,
            {
                "access_token": access_token,
                "expires_in": ACCESS_TOKEN_LIFETIME_S,
                "token_type": "Bearer",
            },
        )

    def _account_for(self, authorization: str) -> _Account | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        for account in self._accounts.values():
            expires = account.access_tokens.get(token)
            if expires is not None and self._clock() < expires:
                return account
        return None

    async def _send(self, request: Request, project_id: str) -> Response:
        account = self._account_for(request.headers.get("authorization", ""))
        if account is None:
            return _error(401, "Request had invalid authentication credentials.")
        if account.project_id != project_id:
            return _error(403, "Permission denied on project.")
        try:
            message = request.json()["message"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "Invalid JSON payload received.")
        problem = _shape_problem(message)
        if problem:
            return _error(400, problem[1], violation=problem[0])
        token = message["token"]
        fault = self.faults.get(token)
        if fault is not None:
            if fault.hang:
                await self.faults.hang()
            return _fault_response(fault)
        self.accepted.append(AcceptedFcm(project_id, token, message, self._clock()))
        return Response.json(
            200, {"name": f"projects/{project_id}/messages/{secrets.token_hex(8)}"}
        )


def _shape_problem(message: Any) -> tuple[str, str] | None:
    """(field, description) of the first thing v1 would refuse, if any."""
    if not isinstance(message, dict):
        return "message", "message must be an object"
    if not isinstance(message.get("token"), str) or not message["token"]:
        return "message.token", "The registration token is not a valid FCM registration token"
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return "message.data", "data values must be strings"
    notification = message.get("notification", {})
    if not isinstance(notification, dict) or not all(
        k in ("title", "body", "image") and isinstance(v, str) for k, v in notification.items()
    ):
        return "message.notification", "unknown or non-string notification field"
    android = message.get("android", {})
    if "ttl" in android and not DURATION.match(str(android["ttl"])):
        return "message.android.ttl", "Invalid value at 'message.android.ttl'"
    return None


def _error(
    status: int, text: str, *, code: str | None = None, violation: str | None = None
) -> Response:
    details: list[dict[str, Any]] = []
    if code:
        details.append({"@type": FCM_ERROR_TYPE, "errorCode": code})
    if violation:
        details.append(
            {
                "@type": BAD_REQUEST_TYPE,
                "fieldViolations": [{"field": violation, "description": text}],
            }
        )
        details.append({"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"})
    error = {
        "code": status,
        "message": text,
        "status": STATUS_NAMES.get(status, "UNKNOWN"),
        "details": details,
    }
    return Response.json(status, {"error": error})


def _fault_response(fault: Fault) -> Response:
    """A scripted failure in FCM's words: ``reason`` is the FcmError code."""
    headers = (("retry-after", fault.retry_after),) if fault.retry_after else ()
    if fault.body is not None:
        return Response(fault.status, fault.body.encode(), headers)
    violation = "message.token" if fault.reason == "INVALID_ARGUMENT" else None
    code = None if violation else (fault.reason or None)
    response = _error(fault.status, fault.reason or "scripted", code=code, violation=violation)
    return Response(response.status, response.body, (*response.headers, *headers))
