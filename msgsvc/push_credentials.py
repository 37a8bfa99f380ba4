"""Push credentials, checked for their provider before they are stored.

A malformed token would only fail later, at delivery, where nobody can be
told; it is refused at registration with ``INVALID_PUSH_CREDENTIAL`` and a
message saying what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from chatmesh.errors import InvalidArgument

FCM, APNS, WEBPUSH = "fcm", "apns", "webpush"
APNS_ENVIRONMENTS = frozenset({"production", "sandbox"})

# FCM registration tokens are ~160 characters of base64url and ":"; the
# bound leaves room for format changes without letting a row grow unbounded.
_FCM_TOKEN = re.compile(r"[A-Za-z0-9_:\-]{20,4096}")
# APNs device tokens are 32 bytes today; Apple allows for longer ones.
_APNS_TOKEN = re.compile(r"(?:[0-9a-fA-F]{2}){32,100}")
# A bundle id, optionally with the .voip / .complication suffixes.
_APNS_TOPIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,254}")
MAX_ENDPOINT_CHARS = 2048
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class PushCredential:
    platform: str  # fcm | apns | webpush
    token: str  # FCM registration token, APNs device token, Web Push endpoint
    params: dict[str, str] = field(default_factory=dict)  # APNs topic/environment; Web Push keys


def fcm(registration_token: str) -> PushCredential:
    if not _FCM_TOKEN.fullmatch(registration_token):
        raise _invalid("an FCM registration token is 20 to 4096 characters of [A-Za-z0-9_:-]")
    return PushCredential(FCM, registration_token)


def apns(device_token: str, topic: str, environment: str) -> PushCredential:
    if not _APNS_TOKEN.fullmatch(device_token):
        raise _invalid("an APNs device token is 32 to 100 bytes in hex")
    if not _APNS_TOPIC.fullmatch(topic):
        raise _invalid("an APNs topic is the app's bundle id")
    if environment not in APNS_ENVIRONMENTS:
        raise _invalid("an APNs registration names its environment: production or sandbox")
    return PushCredential(APNS, device_token.lower(), {"topic": topic, "environment": environment})


def web_push(endpoint: str, p256dh: str, auth: str) -> PushCredential:
    if len(endpoint) > MAX_ENDPOINT_CHARS:
        raise _invalid(f"a Web Push endpoint is at most {MAX_ENDPOINT_CHARS} characters")
    url = urlsplit(endpoint)
    # Push services are https; plain http only to a push service on this
    # machine (the local providers of a development cluster).
    if not url.hostname or not (
        url.scheme == "https" or (url.scheme == "http" and url.hostname in _LOOPBACK)
    ):
        raise _invalid("a Web Push endpoint is an https URL")
    try:
        point = _unbase64url(p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (ValueError, binascii.Error) as exc:
        raise _invalid("p256dh is not a base64url P-256 public key") from exc
    try:
        secret = _unbase64url(auth)
    except (ValueError, binascii.Error) as exc:
        raise _invalid("auth is not base64url") from exc
    if len(secret) != 16:
        raise _invalid("auth is a 16-byte secret")
    return PushCredential(WEBPUSH, endpoint, {"p256dh": p256dh, "auth": auth})


def _unbase64url(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_\-]+=*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _invalid(message: str) -> InvalidArgument:
    return InvalidArgument("INVALID_PUSH_CREDENTIAL", message)
