"""Sending to one provider without overwhelming it or waiting on it forever.

``ProviderGuard`` wraps a provider client with what the provider's own rules
and its outages ask of a sender:

- at most ``max_in_flight`` requests at once (providers throttle, and a
  burst of thousands of requests only earns 429s);
- retries of ``RetryAfter`` outcomes with exponential backoff and full
  jitter, never sooner than the provider's ``Retry-After``;
- a circuit breaker: after ``failures_to_open`` retryable failures in a row,
  over at least ``failing_for_s`` (a dropped connection fails every request
  in flight on it at once; that is one failure, not a provider down), the
  provider is presumed down and nothing is sent for ``open_s`` (callers get
  a ``RetryAfter`` at once and keep their jobs); then one trial request
  decides whether it is back.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from notifysvc.providers.message import Outcome, PushMessage, PushProvider, RetryAfter

C = TypeVar("C")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    max_in_flight: int = 64
    max_attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    failures_to_open: int = 5
    failing_for_s: float = 1.0
    open_s: float = 30.0


class ProviderGuard(Generic[C]):
    def __init__(
        self,
        provider: PushProvider[C],
        policy: GuardPolicy = GuardPolicy(),
        *,
        name: str = "provider",
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._provider = provider
        self._name = name
        self._policy = policy
        self._monotonic = monotonic
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(policy.max_in_flight)
        self._failures = 0
        self._failing_since = 0.0
        self._open_until: float | None = None
        self._trial_running = False

    @property
    def open(self) -> bool:
        return self._open_until is not None

    async def aclose(self) -> None:
        await self._provider.aclose()

    async def send(self, credential: C, message: PushMessage) -> Outcome:
        """The provider's final outcome after retries; a ``RetryAfter`` means
        the job should be kept and tried again later."""
        outcome: Outcome = RetryAfter(None, "not tried")
        for attempt in range(self._policy.max_attempts):
            refused = self._refused_by_circuit()
            if refused is not None:
                return refused
            async with self._slots:
                outcome = await self._provider.send(credential, message)
            self._record(outcome)
            if not isinstance(outcome, RetryAfter) or attempt + 1 == self._policy.max_attempts:
                return outcome
            await self._sleep(self._delay(attempt, outcome.seconds))
        return outcome

    def _delay(self, attempt: int, retry_after_s: float | None) -> float:
        ceiling = min(self._policy.backoff_max_s, self._policy.backoff_base_s * 2**attempt)
        jittered = self._rng.uniform(0, ceiling)
        return max(jittered, retry_after_s or 0.0)

    def _refused_by_circuit(self) -> RetryAfter | None:
        if self._open_until is None:
            return None
        remaining = self._open_until - self._monotonic()
        if remaining > 0 or self._trial_running:
            return RetryAfter(max(remaining, 0.0) or None, "provider circuit open")
        self._trial_running = True  # half-open: this request is the trial
        return None

    def _record(self, outcome: Outcome) -> None:
        trial, self._trial_running = self._trial_running, False
        if isinstance(outcome, RetryAfter):
            now = self._monotonic()
            if self._failures == 0:
                self._failing_since = now
            self._failures += 1
            streak = (
                self._failures >= self._policy.failures_to_open
                and now - self._failing_since >= self._policy.failing_for_s
            )
            if trial or streak:
                if self._open_until is None:
                    log.warning(
                        "push provider presumed down: circuit open",
                        extra={
                            "fields": {
                                "provider": self._name,
                                "failures": self._failures,
                                "reason": outcome.reason,
                                "open_s": self._policy.open_s,
                            }
                        },
                    )
                self._open_until = now + self._policy.open_s
            return
        # Any answer that is not "try again" means the provider is up.
        if self._open_until is not None:
            log.warning(
                "push provider back: circuit closed", extra={"fields": {"provider": self._name}}
            )
        self._failures = 0
        self._open_until = None
