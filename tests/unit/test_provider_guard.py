"""The provider guard: retries, Retry-After, the circuit breaker, concurrency."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from notifysvc.guard import GuardPolicy, ProviderGuard
from notifysvc.providers.message import (
    CredentialDead,
    Delivered,
    Outcome,
    PushMessage,
    RetryAfter,
)

MESSAGE = PushMessage("c1", (1,), "Alice", None, 1, "c1")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Scripted:
    """A provider answering from a script, then with the last answer."""

    def __init__(self, answers: Sequence[Outcome]) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def send(self, credential: str, message: PushMessage) -> Outcome:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0)
        self.in_flight -= 1
        return self.answers[min(self.calls - 1, len(self.answers) - 1)]

    async def aclose(self) -> None:
        pass


def _guard(provider: Scripted, clock: Clock, **policy: float) -> ProviderGuard[str]:
    return ProviderGuard(
        provider,
        GuardPolicy(**policy),  # type: ignore[arg-type]
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        rng=random.Random(7),
    )


async def test_retries_until_delivered_never_sooner_than_retry_after() -> None:
    clock = Clock()
    provider = Scripted([RetryAfter(5.0, "429"), RetryAfter(None, "503"), Delivered()])
    assert await _guard(provider, clock).send("tok", MESSAGE) == Delivered()
    assert provider.calls == 3
    assert clock.slept[0] >= 5.0  # the provider's Retry-After
    assert 0 <= clock.slept[1] <= 1.0  # backoff ceiling of the second attempt


async def test_a_dead_credential_is_not_retried() -> None:
    clock = Clock()
    provider = Scripted([CredentialDead("410")])
    assert await _guard(provider, clock).send("tok", MESSAGE) == CredentialDead("410")
    assert provider.calls == 1 and clock.slept == []


async def test_the_circuit_opens_after_failures_then_one_trial_closes_it() -> None:
    clock = Clock()
    provider = Scripted([RetryAfter(None, "503")] * 4 + [Delivered()])
    guard = _guard(provider, clock, max_attempts=1, failures_to_open=3, open_s=30.0)
    for _ in range(3):
        assert isinstance(await guard.send("tok", MESSAGE), RetryAfter)
        clock.now += 0.5
    assert guard.open
    refused = await guard.send("tok", MESSAGE)
    assert isinstance(refused, RetryAfter) and refused.reason == "provider circuit open"
    assert provider.calls == 3  # nothing sent while open
    clock.now += 31
    assert isinstance(await guard.send("tok", MESSAGE), RetryAfter)  # the trial fails
    assert guard.open and provider.calls == 4
    clock.now += 31
    assert await guard.send("tok", MESSAGE) == Delivered()  # the next trial succeeds
    assert not guard.open


async def test_failures_at_one_instant_do_not_open_the_circuit() -> None:
    """A connection dropped with many requests in flight fails them all at
    once: the provider is not down for that."""
    clock = Clock()
    provider = Scripted([RetryAfter(None, "transport: WriteError")] * 50 + [Delivered()])
    guard = _guard(provider, clock, max_attempts=1, failures_to_open=5, failing_for_s=1.0)
    outcomes = await asyncio.gather(*(guard.send("tok", MESSAGE) for _ in range(50)))
    assert all(isinstance(o, RetryAfter) for o in outcomes)
    assert not guard.open
    assert await guard.send("tok", MESSAGE) == Delivered()


async def test_requests_in_flight_are_bounded() -> None:
    provider = Scripted([Delivered()])
    guard = ProviderGuard(provider, GuardPolicy(max_in_flight=3))
    outcomes = await asyncio.gather(*(guard.send("tok", MESSAGE) for _ in range(20)))
    assert outcomes == [Delivered()] * 20
    assert provider.most_in_flight <= 3
