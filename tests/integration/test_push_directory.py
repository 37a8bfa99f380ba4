"""What notifysvc reads from and writes to PostgreSQL before a push."""

from __future__ import annotations

import json

import asyncpg

from notifysvc.devices import PushDevice
from notifysvc.directory import PostgresPushDirectory
from tests.conftest import add_users, unique

NOW_MS = 1_800_000_000_000


async def _conversation(pool: asyncpg.Pool, kind: int, title: str, *members: str) -> str:
    conversation = unique("conv")
    await pool.execute(
        "INSERT INTO conversations (conversation_id, kind, title, created_at_ms, last_message_id)"
        " VALUES ($1, $2, $3, 0, 500)",
        conversation,
        kind,
        title,
    )
    await pool.executemany(
        "INSERT INTO members (conversation_id, user_id, read_watermark) VALUES ($1, $2, 100)",
        [(conversation, m) for m in members],
    )
    return conversation


async def test_devices_names_titles_marks_mutes_and_badges(pg_pool: asyncpg.Pool) -> None:
    ann, ben = unique("ann"), unique("ben")
    await add_users(pg_pool, ann, ben, devices=("laptop",))
    await pg_pool.execute("UPDATE users SET display_name = 'Ann' WHERE user_id = $1", ann)
    await pg_pool.execute(
        "INSERT INTO devices (user_id, device_id, push_platform, push_token, push_params,"
        " show_previews) VALUES ($1, 'phone', 'apns', 'ab12', $2::jsonb, true)",
        ben,
        json.dumps({"topic": "net.chatmesh.app", "environment": "sandbox"}),
    )
    direct = await _conversation(pg_pool, 1, "", ann, ben)
    group = await _conversation(pg_pool, 2, "Climbing", ann, ben)
    read = await _conversation(pg_pool, 2, "Read", ann, ben)
    await pg_pool.execute(
        "UPDATE members SET read_watermark = 500 WHERE conversation_id = $1", read
    )
    left = await _conversation(pg_pool, 2, "Left", ann, ben)
    await pg_pool.execute(
        "UPDATE members SET left_id = 300 WHERE conversation_id = $1 AND user_id = $2", left, ben
    )
    await pg_pool.execute(
        "INSERT INTO conversation_mutes (user_id, conversation_id, muted_until) VALUES"
        " ($1, $2, NULL), ($1, $3, to_timestamp($4 / 1000.0))",
        ben,
        group,
        direct,
        NOW_MS - 1,  # expired
    )
    directory = PostgresPushDirectory(pg_pool)

    devices = await directory.push_devices({ann, ben})
    assert devices == {
        ben: [
            PushDevice(
                ben,
                "phone",
                "apns",
                "ab12",
                {"topic": "net.chatmesh.app", "environment": "sandbox"},
                show_previews=True,
            )
        ]
    }
    assert await directory.display_names({ann, ben}) == {ann: "Ann", ben: ben}
    conversations = await directory.conversations({direct, group})
    assert (conversations[direct].direct, conversations[group].title) == (True, "Climbing")
    pairs = {(direct, ben), (group, ben), (left, ben), (unique("nowhere"), ben)}
    marks = await directory.read_marks(pairs)
    assert marks[(direct, ben)] == 100
    assert marks[(left, ben)] is None  # no longer a member
    assert len([m for m in marks.values() if m is None]) == 2
    assert await directory.muted(pairs, NOW_MS) == {(group, ben)}
    # Unread: direct and group (500 > 100); not "read", not the one left.
    nobody = unique("nobody")
    assert await directory.badges({ben, nobody}) == {ben: 2, nobody: 0}


async def test_a_dead_credential_is_forgotten_unless_replaced(pg_pool: asyncpg.Pool) -> None:
    user = unique("dora")
    await add_users(pg_pool, user, devices=())
    await pg_pool.execute(
        "INSERT INTO devices (user_id, device_id, push_platform, push_token)"
        " VALUES ($1, 'phone', 'fcm', 'new-token')",
        user,
    )
    directory = PostgresPushDirectory(pg_pool)
    stale = PushDevice(user, "phone", "fcm", "old-token")
    assert not await directory.forget_credential(stale)  # replaced since: kept
    assert (await directory.push_devices({user}))[user][0].token == "new-token"
    assert await directory.forget_credential(PushDevice(user, "phone", "fcm", "new-token"))
    assert await directory.push_devices({user}) == {}
    # The device itself stays registered.
    assert await pg_pool.fetchval("SELECT count(*) FROM devices WHERE user_id = $1", user) == 1
