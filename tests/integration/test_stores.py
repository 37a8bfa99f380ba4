"""Storage modules against the real Cassandra, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest
import redis.asyncio as redis

from chatmesh import snowflake
from chatmesh.clock import SystemClock
from chatmesh.conversation import direct_conversation_id
from chatmesh.errors import Unavailable
from msgsvc.model import StoredMessage
from msgsvc.send_identity import SendKey
from msgsvc.storage.claims import LegacyClaims, RedisClaimStore
from msgsvc.storage.directory import PostgresDirectory
from msgsvc.storage.messages import BUCKET_SPAN_MS, CassandraMessageStore, bucket_of
from msgsvc.visibility import WRITE_START_DEADLINE_MS, may_start_write
from presencesvc.store import LAST_SEEN_TTL_MS, RedisPresenceStore
from sessionsvc.store import SESSION_TTL_S, DeviceSession, RedisSessionStore
from tests.conftest import add_users, unique

T0 = snowflake.EPOCH_MS + 400 * 24 * 3600 * 1000


def _message(conversation_id: str, ts: int, seq: int, body: bytes = b"hi") -> StoredMessage:
    message_id = snowflake.compose(ts, 1, seq)
    return StoredMessage(
        message_id=message_id,
        conversation_id=conversation_id,
        sender_user_id="alice",
        sender_device_id="phone",
        client_msg_id=f"c{ts}-{seq}",
        kind=1,
        body=body,
        created_at_ms=ts,
    )


async def test_messages_round_trip_and_writes_are_idempotent(
    message_store: CassandraMessageStore,
) -> None:
    store = message_store
    conv = unique("conv")
    message = _message(conv, T0, 0, body=b"\x00binary\xff")
    await store.write(message)
    await store.write(message)
    assert await store.get(conv, message.message_id) == message
    page = await store.page(
        conv, before_id=snowflake.lowest_id_at(T0 + 1), limit=10, oldest_bucket=0
    )
    assert page == [message]


async def test_history_pages_walk_buckets_newest_first(
    message_store: CassandraMessageStore,
) -> None:
    store = message_store
    conv = unique("conv")
    # Three buckets, with an empty bucket between the older two.
    stamps = [
        T0,
        T0 + 1,
        T0 + 2 * BUCKET_SPAN_MS,
        T0 + 2 * BUCKET_SPAN_MS + 5,
        T0 + 3 * BUCKET_SPAN_MS,
    ]
    written = [_message(conv, ts, i) for i, ts in enumerate(stamps)]
    assert len({bucket_of(m.message_id) for m in written}) == 3
    await asyncio.gather(*(store.write(m) for m in written))
    newest_first = sorted(written, key=lambda m: m.message_id, reverse=True)

    before = snowflake.lowest_id_at(T0 + 4 * BUCKET_SPAN_MS)
    oldest = bucket_of(written[0].message_id)
    collected: list[StoredMessage] = []
    while True:
        page = await store.page(conv, before_id=before, limit=2, oldest_bucket=oldest)
        collected.extend(page)
        if len(page) < 2:
            break
        before = page[-1].message_id
    assert collected == newest_first


async def test_concurrent_writes_share_batches_and_every_row_lands(
    message_store: CassandraMessageStore,
) -> None:
    """Writes issued together go out as batches bounded in rows and bytes;
    each row is stored exactly as written, whichever batch carried it."""
    store = message_store
    now = SystemClock().now_ms()
    conversations = [unique("conv") for _ in range(7)]
    written = [
        # A few bodies near the size limit force batches to split by bytes.
        _message(conversations[i % 7], now, i, body=(b"x" * 16_000 if i % 50 == 0 else b"hi"))
        for i in range(300)
    ]
    await asyncio.gather(*(store.write(m, may_start=lambda: True) for m in written))
    stored = await asyncio.gather(*(store.get(m.conversation_id, m.message_id) for m in written))
    assert stored == written


async def test_a_bounded_write_past_its_start_deadline_is_refused_alone(
    message_store: CassandraMessageStore,
) -> None:
    """The visibility bound holds even for a write that waited behind a
    batch: an id too old to start is refused as retryable and never stored,
    while the writes it travelled with land."""
    store = message_store
    now = SystemClock().now_ms()

    def bounded(message: StoredMessage) -> Callable[[], bool]:
        return lambda: may_start_write(message.message_id, SystemClock().now_ms())

    conv = unique("conv")
    stale = _message(conv, now - WRITE_START_DEADLINE_MS - 1_000, 0)
    fresh = [_message(conv, now, i) for i in range(1, 5)]
    outcomes = await asyncio.gather(
        store.write(stale, may_start=bounded(stale)),
        *(store.write(m, may_start=bounded(m)) for m in fresh),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], Unavailable) and outcomes[0].reason == "SEND_IN_DOUBT"
    assert outcomes[1:] == [None] * 4
    assert await store.get(conv, stale.message_id) is None
    assert [await store.get(conv, m.message_id) for m in fresh] == fresh
    # Outside the send path (an import, a repair) the bound does not apply.
    await store.write(stale)
    assert await store.get(conv, stale.message_id) == stale


async def test_missing_message_is_none(message_store: CassandraMessageStore) -> None:
    store = message_store
    assert await store.get(unique("conv"), snowflake.compose(T0, 0, 0)) is None
    assert await store.get(unique("conv"), snowflake.compose(T0, 0, 0), every_replica=True) is None


async def test_a_row_read_from_every_replica_is_the_row(
    message_store: CassandraMessageStore,
) -> None:
    conv = unique("conv")
    message = _message(conv, T0, 1, body=b"all")
    await message_store.write(message)
    assert await message_store.get(conv, message.message_id, every_replica=True) == message


async def test_direct_conversation_is_created_once_under_concurrency(pg_pool: asyncpg.Pool) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    directory = PostgresDirectory(pg_pool)
    conv_id = direct_conversation_id(alice, bob)
    results = await asyncio.gather(
        *(directory.ensure_direct(conv_id, alice, bob, created_at_ms=T0 + i) for i in range(8))
    )
    assert {r.member_ids for r in results} == {tuple(sorted((alice, bob)))}
    assert len({r.created_at_ms for r in results}) == 1
    assert await directory.existing_users([alice, bob, unique("ghost")]) == {alice, bob}
    assert await directory.conversation(unique("nope")) is None


@pytest.mark.parametrize("legacy", list(LegacyClaims))
async def test_one_claim_wins_and_everyone_sees_its_id(
    redis_client: redis.Redis, key_prefix: str, legacy: LegacyClaims
) -> None:
    claims = RedisClaimStore(redis_client, key_prefix, legacy=legacy)
    phone = SendKey("alice", "phone", "c-1")
    results = await asyncio.gather(
        *(claims.claim(phone, 1000 + i, "conv", "digest") for i in range(20))
    )
    winners = [r for r in results if r.won]
    assert len(winners) == 1
    assert {(r.message_id, r.digest) for r in results} == {(winners[0].message_id, "digest")}
    # Every other scope of the same client_msg_id is a claim of its own...
    for other in (
        SendKey("alice", "laptop", "c-1"),
        SendKey("alice", "", "c-1"),
        SendKey("bob", "phone", "c-1"),
    ):
        claim = await claims.claim(other, 5, "conv", "other")
        if legacy is LegacyClaims.MIRROR and other.user_id == "alice":
            # ...though while mirroring, alice's other scopes are first shown
            # the user-scoped mirror of the phone's claim, to check its row.
            assert claim.legacy and claim.message_id == winners[0].message_id
            claim = await claims.claim(other, 5, "conv", "other", consult_legacy=False)
        assert claim.won and claim.message_id == 5 and not claim.legacy


async def test_ids_that_look_alike_across_scopes_do_not_share_a_claim(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    claims = RedisClaimStore(redis_client, key_prefix)
    # ("phone", "x:1") and a service send "phone:x:1" would collide in a
    # naive key; so would a legacy user-scoped claim of "phone:x:1".
    await redis_client.set(f"{key_prefix}claim:{{alice}}:phone:x:1", "7:conv")
    first = await claims.claim(SendKey("alice", "phone", "x:1"), 1, "conv", "a")
    service = await claims.claim(
        SendKey("alice", "", "phone:x:1"), 2, "conv", "b", consult_legacy=False
    )
    assert first.won and service.won
    assert (first.message_id, service.message_id) == (1, 2)


async def test_a_reclaim_moves_only_the_stale_binding(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    claims = RedisClaimStore(redis_client, key_prefix)
    key = SendKey("alice", "phone", "c-1")
    stale = await claims.claim(key, 10, "conv", "digest")
    moved, raced = await asyncio.gather(
        claims.reclaim(key, stale, 11), claims.reclaim(key, stale, 12)
    )
    assert [moved.won, raced.won].count(True) == 1
    assert moved.message_id == raced.message_id in (11, 12)
    assert moved.digest == raced.digest == "digest"
    again = await claims.claim(key, 13, "conv", "digest")
    assert not again.won and again.message_id == moved.message_id


async def test_sessions_of_dead_gateways_do_not_count(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store = RedisSessionStore(redis_client, key_prefix)
    phone = DeviceSession("alice", "phone", "gw-live", "c1")
    laptop = DeviceSession("alice", "laptop", "gw-dead", "c2")
    await store.register([phone, laptop])
    await store.heartbeat("gw-live", ttl_s=30)
    assert await store.lookup(["alice"]) == [phone]
    # The stale entry was removed when seen; a later heartbeat does not revive it.
    await store.heartbeat("gw-dead", ttl_s=30)
    assert await store.lookup(["alice"]) == [phone]


async def test_a_gateway_found_alive_counts_for_a_moment_and_a_new_one_at_once(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    now = [100.0]
    store = RedisSessionStore(redis_client, key_prefix, alive_for_s=1.0, monotonic=lambda: now[0])
    phone = DeviceSession("carol", "phone", "gw-a", "c1")
    tablet = DeviceSession("carol", "tablet", "gw-b", "c2")
    await store.heartbeat("gw-a", ttl_s=30)
    await store.register([phone])
    assert await store.lookup(["carol"]) == [phone]
    # gw-a dies; for the remembered second its sessions still count...
    await redis_client.delete(f"{key_prefix}gateway-alive:gw-a")
    now[0] += 0.5
    assert await store.lookup(["carol"]) == [phone]
    # ...and a gateway that has just started is seen at once, though it was
    # not alive a moment ago (dead ones are never remembered).
    await store.register([tablet])
    await store.heartbeat("gw-b", ttl_s=30)
    assert sorted(await store.lookup(["carol"]), key=lambda s: s.device_id) == [phone, tablet]
    now[0] += 1.0
    assert await store.lookup(["carol"]) == [tablet]


async def test_unregister_never_removes_a_newer_connection(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store = RedisSessionStore(redis_client, key_prefix)
    await store.heartbeat("gw", ttl_s=30)
    old = DeviceSession("bob", "phone", "gw", "old")
    new = DeviceSession("bob", "phone", "gw", "new")
    await store.register([old])
    await store.register([new])
    assert await store.unregister([old]) == 0
    assert await store.lookup(["bob"]) == [new]
    assert await store.unregister([new]) == 1
    assert await store.lookup(["bob"]) == []


async def test_registering_a_device_again_reports_the_connection_it_replaced(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store = RedisSessionStore(redis_client, key_prefix)
    first = DeviceSession("alice", "phone", "gw-1", "c1")
    assert await store.register([first]) == []
    assert await store.register([first]) == []  # the same connection again replaces nothing
    moved = DeviceSession("alice", "phone", "gw-2", "c2")
    other_device = DeviceSession("alice", "laptop", "gw-2", "c3")
    assert await store.register([moved, other_device]) == [first]


async def test_session_and_presence_keys_expire(redis_client: redis.Redis, key_prefix: str) -> None:
    sessions = RedisSessionStore(redis_client, key_prefix)
    await sessions.register([DeviceSession("ann", "phone", "gw1", "c1")])
    session_ttl = await redis_client.ttl(f"{key_prefix}sessions:{{ann}}")
    assert 0 < session_ttl <= SESSION_TTL_S
    # Presence is kept while online, and for LAST_SEEN_TTL_MS once offline.
    presence = RedisPresenceStore(redis_client, key_prefix, SystemClock())
    await presence.renew("gw1", 30_000)
    await presence.connected("gw1", ["ann"])
    assert await redis_client.pttl(presence.user_key("ann")) == -1
    await presence.disconnected("gw1", ["ann"], grace_ms=0)
    assert [t.online for t in await presence.settle()] == [False]
    assert 0 < await redis_client.pttl(presence.user_key("ann")) <= LAST_SEEN_TTL_MS
