"""What is pushed, and what became of it: the shapes every provider shares."""

from __future__ import annotations

import datetime
import email.utils
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

# Providers keep an undelivered notification this long by default: after a
# day a "new message" alert is noise, the app syncs on its next start anyway.
DEFAULT_TTL_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class PushMessage:
    """One notification for one device.

    ``body`` is None when the user turned message previews off: the text then
    never leaves our servers, and the device shows a generic alert.
    ``collapse_key`` groups notifications of one conversation, so that a
    device coming back online sees the latest one rather than a backlog.
    """

    conversation_id: str
    message_ids: tuple[int, ...]
    title: str | None
    body: str | None
    badge: int | None
    collapse_key: str
    ttl_s: int = DEFAULT_TTL_S
    extra: Mapping[str, str] = field(default_factory=dict)

    def data(self) -> dict[str, str]:
        """The app's data payload; string values, as FCM requires."""
        return {
            **self.extra,
            "conversation_id": self.conversation_id,
            "message_ids": ",".join(str(m) for m in self.message_ids),
        }


@dataclass(frozen=True, slots=True)
class Delivered:
    """The provider accepted the notification; it delivers on its own from here."""


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """Not delivered, try again: after ``seconds`` when the provider said, else
    on the caller's own backoff."""

    seconds: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class CredentialDead:
    """The device credential will never work again: delete it."""

    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A permanent error for this message (too large, malformed): log, drop."""

    status: int
    reason: str


Outcome = Delivered | RetryAfter | CredentialDead | Rejected

C_contra = TypeVar("C_contra", contravariant=True)


class PushProvider(Protocol[C_contra]):
    """Sends one message to one device credential.

    Never raises for what the provider or the network did: every failure is
    an ``Outcome``. A ``RetryAfter`` may follow a delivery the provider did
    accept (a response lost to a timeout), so a retried notification may
    arrive twice; collapse keys make that harmless on the device.
    """

    async def send(self, credential: C_contra, message: PushMessage) -> Outcome: ...

    async def aclose(self) -> None: ...


def retry_after_seconds(value: str | None, now: datetime.datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP-date
    (RFC 9110 §10.2.3); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - now).total_seconds())
