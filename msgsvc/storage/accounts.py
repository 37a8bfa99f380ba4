"""Users and their devices in PostgreSQL: the account side of the directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

import asyncpg

# Millisecond instants computed by PostgreSQL, so every reader gets the same
# integer the proto carries (floor: an instant never moves into the future).
_CREATED_AT_MS = "floor(extract(epoch FROM created_at) * 1000)::bigint AS created_at_ms"
_USER_COLUMNS = f"user_id, display_name, {_CREATED_AT_MS}"
_DEVICE_COLUMNS = (
    f"user_id, device_id, push_platform, push_token, push_params, show_previews, {_CREATED_AT_MS}"
)


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: str
    display_name: str
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    user_id: str
    device_id: str
    push_platform: str | None  # "fcm" | "apns" | "webpush"; None: no push
    push_token: str | None  # set exactly when push_platform is
    created_at_ms: int
    push_params: dict[str, str] | None = None  # APNs topic/environment, Web Push keys
    show_previews: bool = False


class UnknownUser(LookupError):
    """A device operation named a user that is not registered."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"no user {user_id!r}")
        self.user_id = user_id


class AccountStore(Protocol):
    """Durable users and devices.

    Ids and push fields arrive validated (``msgsvc.accounts`` does that); the
    store enforces only what needs atomicity. Every write is idempotent, so a
    caller may retry any of them after a timeout. Users are never deleted, and
    removing a user's last device does not remove the user. A device belongs
    to exactly one user and its id is unique only within that user.
    """

    async def create_user(self, user_id: str, display_name: str) -> tuple[UserRecord, bool]:
        """Creates the user unless it exists; returns the stored user and
        whether this call created it. An existing user is left unchanged (its
        display name included), and concurrent creators agree on one winner."""
        ...

    async def get_user(self, user_id: str) -> UserRecord | None: ...

    async def register_device(
        self,
        user_id: str,
        device_id: str,
        push_platform: str | None,
        push_token: str | None,
        push_params: dict[str, str] | None = None,
        show_previews: bool | None = None,
    ) -> DeviceRecord:
        """Creates the device, or replaces the push fields of an existing one
        (None clears them) and, unless None, its preview setting;
        ``created_at_ms`` is that of the first registration. Raises
        ``UnknownUser`` if the user does not exist."""
        ...

    async def ensure_device(self, user_id: str, device_id: str) -> DeviceRecord:
        """Creates the device without push unless it exists; an existing
        device is returned unchanged, push token included. Raises
        ``UnknownUser`` if the user does not exist."""
        ...

    async def list_devices(self, user_id: str) -> list[DeviceRecord]:
        """The user's devices ordered by device_id; empty for an unknown user."""
        ...

    async def remove_device(self, user_id: str, device_id: str) -> bool:
        """Removes the device; False if there was none to remove."""
        ...

    async def device_exists(self, user_id: str, device_id: str) -> bool:
        """Whether the device is registered now. A device removed concurrently
        may still be reported as existing by a call already in flight."""
        ...


class PostgresAccountStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_user(self, user_id: str, display_name: str) -> tuple[UserRecord, bool]:
        row = await self._pool.fetchrow(
            "INSERT INTO users (user_id, display_name) VALUES ($1, $2)"
            f" ON CONFLICT DO NOTHING RETURNING {_USER_COLUMNS}",
            user_id,
            display_name,
        )
        if row is not None:
            return _user(row), True
        # A separate statement, not a CTE: a user committed by a concurrent
        # creator after this INSERT's snapshot is visible only to a new one.
        existing = await self.get_user(user_id)
        assert existing is not None  # conflicted with it, and users are never deleted
        return existing, False

    async def get_user(self, user_id: str) -> UserRecord | None:
        row = await self._pool.fetchrow(
            f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = $1", user_id
        )
        return None if row is None else _user(row)

    async def register_device(
        self,
        user_id: str,
        device_id: str,
        push_platform: str | None,
        push_token: str | None,
        push_params: dict[str, str] | None = None,
        show_previews: bool | None = None,
    ) -> DeviceRecord:
        try:
            row = await self._pool.fetchrow(
                "INSERT INTO devices"
                " (user_id, device_id, push_platform, push_token, push_params, show_previews)"
                " VALUES ($1, $2, $3, $4, $5::jsonb, coalesce($6, false))"
                " ON CONFLICT (user_id, device_id) DO UPDATE"
                " SET push_platform = EXCLUDED.push_platform, push_token = EXCLUDED.push_token,"
                " push_params = EXCLUDED.push_params,"
                " show_previews = coalesce($6, devices.show_previews)"
                f" RETURNING {_DEVICE_COLUMNS}",
                user_id,
                device_id,
                push_platform,
                push_token,
                None if push_params is None else json.dumps(push_params, sort_keys=True),
                show_previews,
            )
        except asyncpg.ForeignKeyViolationError as exc:
            raise UnknownUser(user_id) from exc
        assert row is not None  # an upsert always returns its row
        return _device(row)

    async def ensure_device(self, user_id: str, device_id: str) -> DeviceRecord:
        try:
            # The no-op DO UPDATE (rather than DO NOTHING) makes RETURNING
            # yield the existing row too: one atomic statement, no window for a
            # concurrent removal between an insert and a select.
            row = await self._pool.fetchrow(
                "INSERT INTO devices (user_id, device_id) VALUES ($1, $2)"
                " ON CONFLICT (user_id, device_id) DO UPDATE SET device_id = EXCLUDED.device_id"
                f" RETURNING {_DEVICE_COLUMNS}",
                user_id,
                device_id,
            )
        except asyncpg.ForeignKeyViolationError as exc:
            raise UnknownUser(user_id) from exc
        assert row is not None  # an upsert always returns its row
        return _device(row)

    async def list_devices(self, user_id: str) -> list[DeviceRecord]:
        rows = await self._pool.fetch(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE user_id = $1 ORDER BY device_id",
            user_id,
        )
        return [_device(r) for r in rows]

    async def remove_device(self, user_id: str, device_id: str) -> bool:
        status = await self._pool.execute(
            "DELETE FROM devices WHERE user_id = $1 AND device_id = $2", user_id, device_id
        )
        return status == "DELETE 1"

    async def device_exists(self, user_id: str, device_id: str) -> bool:
        found = await self._pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM devices WHERE user_id = $1 AND device_id = $2)",
            user_id,
            device_id,
        )
        return bool(found)


def _user(row: asyncpg.Record) -> UserRecord:
    return UserRecord(
        user_id=row["user_id"],
        display_name=row["display_name"],
        created_at_ms=row["created_at_ms"],
    )


def _device(row: asyncpg.Record) -> DeviceRecord:
    return DeviceRecord(
        user_id=row["user_id"],
        device_id=row["device_id"],
        push_platform=row["push_platform"],
        push_token=row["push_token"],
        created_at_ms=row["created_at_ms"],
        push_params=None if row["push_params"] is None else json.loads(row["push_params"]),
        show_previews=row["show_previews"],
    )
