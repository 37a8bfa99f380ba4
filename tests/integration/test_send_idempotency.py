"""A client_msg_id names one send of one device: real stores, two msgsvc instances.

Also the user-scoped claims of before decision 0010: a retry of a send they
hold is still answered with its first id, and they never swallow another
device's message.
"""

from __future__ import annotations

import asyncpg
import pytest
import redis.asyncio as redis

from chatmesh import snowflake
from chatmesh.conversation import direct_conversation_id
from chatmesh.errors import InvalidArgument, PermissionDenied, Unavailable
from msgsvc.model import MAX_CLIENT_MSG_ID_CHARS, SendCommand, StoredMessage
from msgsvc.storage.claims import LegacyClaims
from msgsvc.storage.messages import CassandraMessageStore, bucket_at
from msgsvc.visibility import RECLAIM_AFTER_MS
from tests.conftest import add_users, unique
from tests.integration.conftest import MakeInstance
from tests.support.msgsvc_domain import Instance, ManualClock

START_MS = snowflake.EPOCH_MS + 710 * 24 * 3600 * 1000


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START_MS)


@pytest.fixture
def two_instances(make_instance: MakeInstance, clock: ManualClock) -> tuple[Instance, Instance]:
    return make_instance(21, clock), make_instance(22, clock)


@pytest.fixture
async def pair(pg_pool: asyncpg.Pool) -> tuple[str, str]:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    return alice, bob


async def rows_of(store: CassandraMessageStore, conversation_id: str) -> list[StoredMessage]:
    # Bounded to the test's own time: every ten-day bucket back to the epoch
    # would be a query each.
    return await store.page(
        conversation_id,
        before_id=snowflake.lowest_id_at(START_MS + 10 * RECLAIM_AFTER_MS),
        limit=500,
        oldest_bucket=bucket_at(START_MS),
    )


async def test_two_devices_may_use_the_same_client_msg_id(
    two_instances: tuple[Instance, Instance],
    pair: tuple[str, str],
    message_store: CassandraMessageStore,
) -> None:
    one, two = two_instances
    alice, bob = pair
    phone = await one.send(alice, to_user=bob, client_msg_id="m1", body=b"from phone")
    laptop = await two.send(
        alice, to_user=bob, client_msg_id="m1", body=b"from laptop", device="laptop"
    )
    assert not phone.duplicate and not laptop.duplicate
    assert phone.message.message_id != laptop.message.message_id

    # Each device's resend, on either instance, is its own first send again.
    phone_again = await two.send(alice, to_user=bob, client_msg_id="m1", body=b"from phone")
    laptop_again = await one.send(
        alice, to_user=bob, client_msg_id="m1", body=b"from laptop", device="laptop"
    )
    assert phone_again.duplicate and phone_again.message == phone.message
    assert laptop_again.duplicate and laptop_again.message == laptop.message

    rows = await rows_of(message_store, phone.message.conversation_id)
    assert sorted((r.sender_device_id, r.body) for r in rows) == [
        ("laptop", b"from laptop"),
        ("phone", b"from phone"),
    ]


async def test_a_reused_id_with_other_content_is_refused_and_changes_nothing(
    two_instances: tuple[Instance, Instance],
    pg_pool: asyncpg.Pool,
    pair: tuple[str, str],
    message_store: CassandraMessageStore,
) -> None:
    one, two = two_instances
    alice, bob = pair
    carol = unique("carol")
    await add_users(pg_pool, carol)
    first = await one.send(alice, to_user=bob, client_msg_id="m1", body=b"original")
    conversation_id = first.message.conversation_id

    for attempt in (
        two.send(alice, to_user=bob, client_msg_id="m1", body=b"edited"),
        one.send(alice, to_user=carol, client_msg_id="m1", body=b"original"),
    ):
        with pytest.raises(InvalidArgument) as refused:
            await attempt
        assert refused.value.reason == "CLIENT_MSG_ID_REUSED"

    # Naming the same conversation by its id is the same target.
    by_id = await two.send(
        alice, conversation=conversation_id, client_msg_id="m1", body=b"original"
    )
    assert by_id.duplicate and by_id.message == first.message
    assert [r.body for r in await rows_of(message_store, conversation_id)] == [b"original"]
    assert await rows_of(message_store, direct_conversation_id(alice, carol)) == []


async def test_service_sends_have_a_scope_of_their_own(
    two_instances: tuple[Instance, Instance],
    pair: tuple[str, str],
    message_store: CassandraMessageStore,
) -> None:
    one, two = two_instances
    alice, bob = pair
    by_service = await one.send(alice, to_user=bob, client_msg_id="m1", body=b"bot", device="")
    by_phone = await two.send(alice, to_user=bob, client_msg_id="m1", body=b"phone")
    assert by_service.message.message_id != by_phone.message.message_id
    assert by_service.message.sender_device_id == ""
    again = await two.send(alice, to_user=bob, client_msg_id="m1", body=b"bot", device="")
    assert again.duplicate and again.message == by_service.message
    with pytest.raises(InvalidArgument) as refused:
        await one.send(alice, to_user=bob, client_msg_id="m1", body=b"other", device="")
    assert refused.value.reason == "CLIENT_MSG_ID_REUSED"
    assert len(await rows_of(message_store, by_phone.message.conversation_id)) == 2


async def test_no_device_and_no_internal_client_is_refused(
    two_instances: tuple[Instance, Instance],
    pair: tuple[str, str],
    message_store: CassandraMessageStore,
) -> None:
    """An empty device id skips the device check only for an authenticated
    internal client; from a device's stream it is an unregistered device."""
    one, _ = two_instances
    alice, bob = pair
    sent = await one.send(alice, to_user=bob, client_msg_id="m1")
    with pytest.raises(PermissionDenied) as refused:
        await one.sender.send(
            SendCommand(
                sender_user_id=alice,
                sender_device_id="",
                client_msg_id="m2",
                conversation_id=None,
                to_user_id=bob,
                kind=1,
                body=b"forged",
            )
        )
    assert refused.value.reason == "DEVICE_NOT_REGISTERED"
    assert len(await rows_of(message_store, sent.message.conversation_id)) == 1


@pytest.mark.parametrize("fill", ["x", "é", "💬", ":"])
async def test_ids_at_the_length_limit_are_one_send_and_longer_ones_are_refused(
    two_instances: tuple[Instance, Instance],
    pair: tuple[str, str],
    message_store: CassandraMessageStore,
    fill: str,
) -> None:
    one, two = two_instances
    alice, bob = pair
    longest = fill * MAX_CLIENT_MSG_ID_CHARS
    first = await one.send(alice, to_user=bob, client_msg_id=longest)
    again = await two.send(alice, to_user=bob, client_msg_id=longest)
    assert again.duplicate and again.message == first.message
    assert first.message.client_msg_id == longest
    with pytest.raises(InvalidArgument) as refused:
        await one.send(alice, to_user=bob, client_msg_id=longest + fill)
    assert refused.value.reason == "CLIENT_MSG_ID_TOO_LONG"
    rows = await rows_of(message_store, first.message.conversation_id)
    assert [r.client_msg_id for r in rows] == [longest]


# -- the user-scoped claims of before decision 0010 ------------------------------------


class PreviousVersion:
    """What a msgsvc of the previous version leaves behind: a user-scoped
    claim (``claim:{user}:client_msg_id`` → ``id:conversation``) and, once
    its write lands, the row."""

    def __init__(
        self, redis_client: redis.Redis, key_prefix: str, store: CassandraMessageStore
    ) -> None:
        self._redis = redis_client
        self._prefix = key_prefix
        self._store = store

    def key(self, user: str, client_msg_id: str) -> str:
        return f"{self._prefix}claim:{{{user}}}:{client_msg_id}"

    async def claim(self, user: str, client_msg_id: str, message_id: int, to: str) -> str:
        conversation_id = direct_conversation_id(user, to)
        await self._redis.set(self.key(user, client_msg_id), f"{message_id}:{conversation_id}")
        return conversation_id

    async def forget(self, user: str, client_msg_id: str) -> None:
        await self._redis.delete(self.key(user, client_msg_id))

    async def write(
        self, user: str, device: str, client_msg_id: str, message_id: int, to: str, body: bytes
    ) -> None:
        await self._store.write(
            StoredMessage(
                message_id=message_id,
                conversation_id=direct_conversation_id(user, to),
                sender_user_id=user,
                sender_device_id=device,
                client_msg_id=client_msg_id,
                kind=1,
                body=body,
                created_at_ms=snowflake.timestamp_ms(message_id),
            )
        )


@pytest.fixture
def previous(
    redis_client: redis.Redis, key_prefix: str, message_store: CassandraMessageStore
) -> PreviousVersion:
    return PreviousVersion(redis_client, key_prefix, message_store)


async def test_a_retry_of_a_send_claimed_before_the_change_keeps_its_id(
    two_instances: tuple[Instance, Instance],
    pair: tuple[str, str],
    previous: PreviousVersion,
    message_store: CassandraMessageStore,
) -> None:
    one, two = two_instances
    alice, bob = pair
    await one.send(alice, to_user=bob, client_msg_id="opening")  # the conversation exists
    old_id = two.ids.generate_now()
    conversation_id = await previous.claim(alice, "m1", old_id, bob)

    # The old attempt is still writing: nobody can tell whose send it is yet.
    with pytest.raises(Unavailable) as in_doubt:
        await one.send(alice, to_user=bob, client_msg_id="m1", body=b"hello")
    assert in_doubt.value.reason == "SEND_IN_DOUBT"

    await previous.write(alice, "phone", "m1", old_id, bob, b"hello")
    retried = await one.send(alice, to_user=bob, client_msg_id="m1", body=b"hello")
    assert retried.duplicate and retried.message.message_id == old_id
    # Bound to the device now: the next retry needs the legacy claim no more.
    await previous.forget(alice, "m1")
    again = await two.send(alice, to_user=bob, client_msg_id="m1", body=b"hello")
    assert again.duplicate and again.message.message_id == old_id
    with pytest.raises(InvalidArgument) as refused:
        await two.send(alice, to_user=bob, client_msg_id="m1", body=b"changed")
    assert refused.value.reason == "CLIENT_MSG_ID_REUSED"
    assert [r.message_id for r in await rows_of(message_store, conversation_id)].count(old_id) == 1
    assert len(await rows_of(message_store, conversation_id)) == 2


async def test_a_claim_from_before_the_change_never_swallows_another_devices_send(
    two_instances: tuple[Instance, Instance],
    pair: tuple[str, str],
    previous: PreviousVersion,
    message_store: CassandraMessageStore,
) -> None:
    one, two = two_instances
    alice, bob = pair
    old_id = two.ids.generate_now()
    conversation_id = await previous.claim(alice, "m1", old_id, bob)
    await previous.write(alice, "phone", "m1", old_id, bob, b"from phone")

    laptop = await one.send(
        alice, to_user=bob, client_msg_id="m1", body=b"from laptop", device="laptop"
    )
    assert not laptop.duplicate and laptop.message.message_id != old_id
    rows = await rows_of(message_store, conversation_id)
    assert sorted((r.sender_device_id, r.body) for r in rows) == [
        ("laptop", b"from laptop"),
        ("phone", b"from phone"),
    ]


async def test_a_claim_from_before_the_change_that_never_landed_is_stored_once(
    two_instances: tuple[Instance, Instance],
    clock: ManualClock,
    pair: tuple[str, str],
    previous: PreviousVersion,
    message_store: CassandraMessageStore,
) -> None:
    one, two = two_instances
    alice, bob = pair
    lost_id = two.ids.generate_now()
    conversation_id = await previous.claim(alice, "m1", lost_id, bob)
    clock.advance(RECLAIM_AFTER_MS + 1)  # that attempt can no longer land
    stored = await one.send(alice, to_user=bob, client_msg_id="m1", body=b"hello")
    again = await two.send(alice, to_user=bob, client_msg_id="m1", body=b"hello")
    assert not stored.duplicate and stored.message.message_id != lost_id
    assert again.duplicate and again.message == stored.message
    assert [r.message_id for r in await rows_of(message_store, conversation_id)] == [
        stored.message.message_id
    ]


async def test_mirrored_claims_are_what_the_previous_version_reads(
    make_instance: MakeInstance,
    clock: ManualClock,
    pair: tuple[str, str],
    previous: PreviousVersion,
    redis_client: redis.Redis,
) -> None:
    alice, bob = pair
    mirroring = make_instance(23, clock, legacy_claims=LegacyClaims.MIRROR)
    phone = await mirroring.send(alice, to_user=bob, client_msg_id="m1", body=b"from phone")
    # The previous version's format: id:conversation, found under the user.
    held = await redis_client.get(previous.key(alice, "m1"))
    assert held == f"{phone.message.message_id}:{phone.message.conversation_id}".encode()

    # Another device's send finds the mirror, reads its row, and is a message of its own.
    laptop = await mirroring.send(
        alice, to_user=bob, client_msg_id="m1", body=b"from laptop", device="laptop"
    )
    assert laptop.message.message_id != phone.message.message_id
    # The mirror keeps the first binding: the previous version would answer
    # a retry of the phone's send with the phone's id.
    assert await redis_client.get(previous.key(alice, "m1")) == held


async def test_legacy_claims_are_ignored_once_off(
    make_instance: MakeInstance,
    clock: ManualClock,
    pair: tuple[str, str],
    previous: PreviousVersion,
    redis_client: redis.Redis,
) -> None:
    alice, bob = pair
    unaware = make_instance(24, clock, legacy_claims=LegacyClaims.OFF)
    await previous.claim(alice, "m1", unaware.ids.generate_now(), bob)  # never written
    held = await redis_client.get(previous.key(alice, "m1"))
    stored = await unaware.send(alice, to_user=bob, client_msg_id="m1")  # not held in doubt
    again = await unaware.send(alice, to_user=bob, client_msg_id="m1")
    assert not stored.duplicate and again.duplicate and again.message == stored.message
    with pytest.raises(InvalidArgument):
        await unaware.send(alice, to_user=bob, client_msg_id="m1", body=b"other")
    assert await redis_client.get(previous.key(alice, "m1")) == held  # neither read nor written
