"""Users and devices: the account layer over the real PostgreSQL store.

The contract of ``AccountStore`` is checked through ``Accounts``, which is how
every caller reaches it; the operator CLI is checked against the same store.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import redis.asyncio as redis

from chatmesh.clock import SystemClock
from chatmesh.errors import InvalidArgument, NotFound
from chatmesh.revocations import Revocations
from msgsvc.accounts import MAX_DISPLAY_NAME_CHARS, MAX_PUSH_TOKEN_CHARS, Accounts
from msgsvc.storage.accounts import PostgresAccountStore
from tests.conftest import unique


@pytest.fixture
def store(pg_pool: asyncpg.Pool) -> PostgresAccountStore:
    return PostgresAccountStore(pg_pool)


@pytest.fixture
def accounts(store: PostgresAccountStore, redis_client: redis.Redis, key_prefix: str) -> Accounts:
    return Accounts(store, Revocations(redis_client, key_prefix), SystemClock())


async def test_creating_a_user_twice_returns_the_first_unchanged(accounts: Accounts) -> None:
    alice = unique("alice")
    first, created = await accounts.create_user(alice, "Alice")
    again, created_again = await accounts.create_user(alice, "Someone else")
    assert created and not created_again
    assert again == first
    assert (first.user_id, first.display_name) == (alice, "Alice")
    assert first.created_at_ms > 0
    assert await accounts.get_user(alice) == first


async def test_concurrent_creators_agree_on_one_winner(accounts: Accounts) -> None:
    alice = unique("alice")
    results = await asyncio.gather(*(accounts.create_user(alice, f"n{i}") for i in range(8)))
    assert sum(created for _, created in results) == 1
    assert len({user for user, _ in results}) == 1


async def test_registering_a_device_again_replaces_its_push_fields_only(
    accounts: Accounts, store: PostgresAccountStore
) -> None:
    alice = unique("alice")
    await accounts.create_user(alice, "")
    plain = await accounts.register_device(alice, "phone")
    assert (plain.push_platform, plain.push_token) == (None, None)
    pushed = await accounts.register_device(alice, "phone", "fcm", "tok-1")
    assert (pushed.push_platform, pushed.push_token) == ("fcm", "tok-1")
    moved = await accounts.register_device(alice, "phone", "apns", "tok-2")
    assert (moved.push_platform, moved.push_token) == ("apns", "tok-2")
    assert moved.created_at_ms == plain.created_at_ms
    cleared = await accounts.register_device(alice, "phone", None, "")
    assert (cleared.push_platform, cleared.push_token) == (None, None)
    assert await accounts.list_devices(alice) == [cleared]
    assert await store.device_exists(alice, "phone")


async def test_ensure_device_registers_once_and_keeps_the_push_token(accounts: Accounts) -> None:
    alice = unique("alice")
    await accounts.create_user(alice, "")
    created = await accounts.ensure_device(alice, "laptop")
    assert created.push_token is None
    pushed = await accounts.register_device(alice, "laptop", "webpush", "sub")
    assert await accounts.ensure_device(alice, "laptop") == pushed


async def test_devices_are_listed_by_id_and_scoped_to_their_user(
    accounts: Accounts, store: PostgresAccountStore
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await accounts.create_user(alice, "")
    await accounts.create_user(bob, "")
    for device in ("tablet", "laptop", "phone"):
        await accounts.register_device(alice, device)
    await accounts.register_device(bob, "phone", "fcm", "bob-token")
    listed = await accounts.list_devices(alice)
    assert [d.device_id for d in listed] == ["laptop", "phone", "tablet"]
    assert {d.user_id for d in listed} == {alice}
    carol = unique("carol")
    await accounts.create_user(carol, "")
    assert await accounts.list_devices(carol) == []
    assert not await store.device_exists(bob, "laptop")


async def test_removing_a_device_reports_whether_it_existed(
    accounts: Accounts, store: PostgresAccountStore
) -> None:
    alice = unique("alice")
    await accounts.create_user(alice, "")
    await accounts.register_device(alice, "phone", "fcm", "tok")
    await accounts.register_device(alice, "laptop")
    assert await accounts.remove_device(alice, "phone")
    assert not await accounts.remove_device(alice, "phone")
    assert not await store.device_exists(alice, "phone")
    assert [d.device_id for d in await accounts.list_devices(alice)] == ["laptop"]
    # The user outlives its devices.
    assert await accounts.remove_device(alice, "laptop")
    assert (await accounts.get_user(alice)).user_id == alice


@pytest.mark.parametrize(
    "call",
    [
        lambda a, u: a.register_device(u, "phone"),
        lambda a, u: a.ensure_device(u, "phone"),
        lambda a, u: a.list_devices(u),
        lambda a, u: a.remove_device(u, "phone"),
        lambda a, u: a.get_user(u),
    ],
    ids=["register", "ensure", "list", "remove", "get"],
)
async def test_device_operations_on_an_unknown_user_are_not_found(
    accounts: Accounts,
    call,  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(NotFound) as failed:
        await call(accounts, unique("ghost"))
    assert failed.value.reason == "USER_NOT_FOUND"


@pytest.mark.parametrize(
    ("platform", "token", "reason"),
    [
        ("fcm", "", "MISSING_PUSH_TOKEN"),
        ("apns", None, "MISSING_PUSH_TOKEN"),
        (None, "orphan-token", "PUSH_TOKEN_WITHOUT_PLATFORM"),
        ("carrier-pigeon", "tok", "UNKNOWN_PUSH_PLATFORM"),
        ("fcm", "x" * (MAX_PUSH_TOKEN_CHARS + 1), "PUSH_TOKEN_TOO_LONG"),
        ("fcm", "a\x00b", "INVALID_PUSH_TOKEN"),
    ],
)
async def test_push_fields_must_agree(
    accounts: Accounts,
    store: PostgresAccountStore,
    platform: str | None,
    token: str | None,
    reason: str,
) -> None:
    alice = unique("alice")
    await accounts.create_user(alice, "")
    with pytest.raises(InvalidArgument) as failed:
        await accounts.register_device(alice, "phone", platform, token)
    assert failed.value.reason == reason
    assert not await store.device_exists(alice, "phone")


async def test_a_push_token_at_the_limit_is_stored_whole(accounts: Accounts) -> None:
    alice = unique("alice")
    await accounts.create_user(alice, "")
    token = "t" * MAX_PUSH_TOKEN_CHARS
    assert (await accounts.register_device(alice, "phone", "webpush", token)).push_token == token


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda a: a.create_user("", "x"), "INVALID_USER_ID"),
        (lambda a: a.create_user("has space", "x"), "INVALID_USER_ID"),
        (lambda a: a.create_user("u" * 65, "x"), "INVALID_USER_ID"),
        (lambda a: a.create_user("-leading", "x"), "INVALID_USER_ID"),
        (
            lambda a: a.create_user("ok", "n" * (MAX_DISPLAY_NAME_CHARS + 1)),
            "DISPLAY_NAME_TOO_LONG",
        ),
        (lambda a: a.create_user("ok", "a\x00b"), "INVALID_DISPLAY_NAME"),
        (lambda a: a.register_device("ok", ""), "INVALID_DEVICE_ID"),
        (lambda a: a.register_device("ok", "dev/1"), "INVALID_DEVICE_ID"),
        (lambda a: a.ensure_device("ok", "é"), "INVALID_DEVICE_ID"),
        (lambda a: a.remove_device("ok", "d" * 65), "INVALID_DEVICE_ID"),
        (lambda a: a.list_devices("a:b"), "INVALID_USER_ID"),
        (lambda a: a.remove_device("", "phone"), "INVALID_USER_ID"),
    ],
)
async def test_malformed_input_is_refused_before_the_store(
    accounts: Accounts,
    call,  # type: ignore[no-untyped-def]
    reason: str,
) -> None:
    with pytest.raises(InvalidArgument) as failed:
        await call(accounts)
    assert failed.value.reason == reason


async def test_a_display_name_at_the_limit_is_stored_whole(accounts: Accounts) -> None:
    name = "名" * MAX_DISPLAY_NAME_CHARS  # characters, not bytes
    user, _ = await accounts.create_user(unique("alice"), name)
    assert user.display_name == name
