"""Provisioning users and devices from operator and developer tools.

These go through msgsvc's account layer, so they validate and store exactly
as the DirectoryService does. Both are idempotent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from msgsvc.accounts import Accounts
from msgsvc.storage.accounts import PostgresAccountStore


@asynccontextmanager
async def _accounts(dsn: str) -> AsyncIterator[Accounts]:
    # One connection is plenty for one command.
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        yield Accounts(PostgresAccountStore(pool))
    finally:
        await pool.close()


async def add_user(dsn: str, user_id: str, display_name: str) -> bool:
    """Registers a user; returns False if it already existed (left unchanged)."""
    async with _accounts(dsn) as accounts:
        _, created = await accounts.create_user(user_id, display_name)
        return created


async def register_device(dsn: str, user_id: str, device_id: str) -> None:
    """Registers the device unless it exists; an existing device keeps its
    push token. Raises ``NotFound`` for an unknown user."""
    async with _accounts(dsn) as accounts:
        await accounts.ensure_device(user_id, device_id)
