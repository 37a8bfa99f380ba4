"""Conversation mutes in PostgreSQL: which members are muted now."""

from __future__ import annotations

import asyncpg

from msgsvc.storage.mutes import PostgresMutes
from tests.conftest import add_users, unique


async def test_muted_members_are_those_muted_for_good_or_until_later(
    pg_pool: asyncpg.Pool,
) -> None:
    ann, ben, cat, dan = (unique(n) for n in ("ann", "ben", "cat", "dan"))
    await add_users(pg_pool, ann, ben, cat, dan)
    conversation = unique("conv")
    await pg_pool.execute(
        "INSERT INTO conversations (conversation_id, kind, created_at_ms) VALUES ($1, 2, 0)",
        conversation,
    )
    mutes = PostgresMutes(pg_pool)
    now_ms = 1_800_000_000_000
    await mutes.mute(ann, conversation, None)  # for good
    await mutes.mute(ben, conversation, now_ms + 60_000)  # a minute more
    await mutes.mute(cat, conversation, now_ms - 1)  # over
    await mutes.mute(dan, conversation, None)
    await mutes.unmute(dan, conversation)
    muted = await mutes.muted(conversation, [ann, ben, cat, dan], now_ms)
    assert muted == {ann, ben}
    assert await mutes.muted(conversation, [ann, ben], now_ms + 120_000) == {ann}
