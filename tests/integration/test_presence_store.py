"""Presence transitions in Redis, on a clock the test moves: what turns a
user online or offline, and what makes no event at all."""

from __future__ import annotations

from collections.abc import Awaitable

import redis.asyncio as redis

from presencesvc.store import RedisPresenceStore, Transition
from tests.conftest import unique
from tests.support.msgsvc_domain import ManualClock

T0 = 1_800_000_000_000
LEASE_MS = 30_000
GRACE_MS = 5_000


async def announced(
    store: RedisPresenceStore, made: Awaitable[list[Transition]]
) -> list[Transition]:
    """What presencesvc does with transitions: publish, then mark them announced."""
    transitions = await made
    await store.announced(transitions)
    return transitions


def store_at(redis_client: redis.Redis, key_prefix: str) -> tuple[RedisPresenceStore, ManualClock]:
    clock = ManualClock(T0)
    return RedisPresenceStore(redis_client, f"{key_prefix}{unique('p')}:", clock), clock


async def test_first_connection_online_last_one_offline_after_the_grace(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store, clock = store_at(redis_client, key_prefix)
    await store.renew("gw-1", LEASE_MS)
    assert await announced(store, store.connected("gw-1", ["ann"])) == [Transition("ann", True, T0)]
    assert (
        await announced(store, store.connected("gw-1", ["ann"])) == []
    )  # a second device: no event
    clock.advance(10_000)
    await store.disconnected("gw-1", ["ann"], grace_ms=GRACE_MS)
    (state,) = await store.get(["ann"])
    assert state.online  # not yet: the grace runs
    clock.advance(GRACE_MS - 1)
    assert await announced(store, store.settle()) == []
    clock.advance(1)
    assert await announced(store, store.settle()) == [Transition("ann", False, T0 + 10_000)]
    (state,) = await store.get(["ann"])
    assert (state.online, state.last_seen_ms, state.since_ms) == (False, T0 + 10_000, T0 + 10_000)
    assert await announced(store, store.settle()) == []  # once


async def test_a_reconnect_within_the_grace_makes_no_event(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store, clock = store_at(redis_client, key_prefix)
    await store.renew("gw-1", LEASE_MS)
    await store.renew("gw-2", LEASE_MS)
    await announced(store, store.connected("gw-1", ["ben"]))
    await store.disconnected("gw-1", ["ben"], grace_ms=GRACE_MS)
    clock.advance(2_000)
    assert await announced(store, store.connected("gw-2", ["ben"])) == []  # back, elsewhere
    clock.advance(GRACE_MS)
    assert await announced(store, store.settle()) == []
    (state,) = await store.get(["ben"])
    assert (state.online, state.since_ms) == (True, T0)


async def test_a_user_on_two_gateways_stays_online_while_either_holds_them(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store, _ = store_at(redis_client, key_prefix)
    await store.renew("gw-1", LEASE_MS)
    await store.renew("gw-2", LEASE_MS)
    await announced(store, store.connected("gw-1", ["cat"]))
    await announced(store, store.connected("gw-2", ["cat"]))
    await store.disconnected("gw-1", ["cat"], grace_ms=0)
    assert await announced(store, store.settle()) == []
    await store.disconnected("gw-2", ["cat"], grace_ms=0)
    assert [t.online for t in await announced(store, store.settle())] == [False]


async def test_a_gateway_whose_lease_runs_out_takes_only_its_own_users(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store, clock = store_at(redis_client, key_prefix)
    await store.renew("dead", LEASE_MS)
    await store.renew("alive", LEASE_MS)
    await announced(store, store.connected("dead", ["dan", "eve"]))
    await announced(store, store.connected("alive", ["eve"]))
    clock.advance(LEASE_MS - 1_000)
    await store.renew("alive", LEASE_MS)  # the other keeps reporting
    clock.advance(2_000)
    assert await store.sweep_gateways() == 1
    assert await announced(store, store.settle()) == [
        Transition("dan", False, T0)
    ]  # last seen: its last report
    dan, eve = await store.get(["dan", "eve"])
    assert not dan.online and eve.online
    assert await store.population("dead") == set()
    assert not await store.renew("dead", LEASE_MS)  # it comes back: it must report in full
    assert await store.sweep_gateways() == 0


async def test_a_transition_cut_short_before_its_event_is_announced_when_made_again(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store, clock = store_at(redis_client, key_prefix)
    await store.renew("gw-1", LEASE_MS)
    # The report that turned fay online died before publishing: its retry tells.
    assert await store.connected("gw-1", ["fay"]) == [Transition("fay", True, T0)]
    clock.advance(1_000)
    assert await announced(store, store.connected("gw-1", ["fay"])) == [Transition("fay", True, T0)]
    assert await store.connected("gw-1", ["fay"]) == []
    await store.disconnected("gw-1", ["fay"], grace_ms=0)
    # Likewise a sweep: the offline stays due until announced.
    assert await store.settle() == [Transition("fay", False, T0 + 1_000)]
    assert await announced(store, store.settle()) == [Transition("fay", False, T0 + 1_000)]
    assert await store.settle() == []
