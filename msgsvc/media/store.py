"""The record of uploads in PostgreSQL: who uploaded what, whether it was
checked, which conversations carry it, and each user's daily quota.

Whether a user may read media is answered by joining its references with
the directory's member rows: a current member whose window holds a message
carrying it (a group member sees what was sent after they joined).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from chatmesh.errors import NotFound, ResourceExhausted


@dataclass(frozen=True, slots=True)
class Upload:
    media_id: str
    owner_user_id: str
    kind: int
    content_type: str
    size_bytes: int
    sha256: bytes
    object_key: str
    expires_at_ms: int
    completed: bool


@dataclass(frozen=True, slots=True)
class DailyQuota:
    uploads: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Expired:
    media_id: str
    object_key: str


class MediaStore(Protocol):
    async def create(self, upload: Upload, day: dt.date, quota: DailyQuota) -> None:
        """Records a pending upload, counted against the owner's quota of
        ``day``; raises ``ResourceExhausted`` (and records nothing) beyond it."""
        ...

    async def get(self, media_id: str) -> Upload | None: ...

    async def complete(self, media_id: str, now_ms: int) -> bool: ...

    async def reference(self, media_id: str, conversation_id: str, message_id: int) -> None:
        """Raises ``NotFound`` if the upload is gone (swept meanwhile)."""
        ...

    async def readable(self, media_id: str, user_id: str, conversation_id: str | None) -> bool:
        """Whether a message the user may read carries the media: in the
        given conversation, or in any of theirs."""
        ...

    async def expired_pending(self, before_ms: int, limit: int) -> list[Expired]: ...

    async def forget_pending(self, media_ids: list[str]) -> None: ...

    async def take_unreferenced(self, before_ms: int, limit: int) -> list[Expired]: ...


_UPLOAD_COLUMNS = (
    "media_id, owner_user_id, kind, content_type, size_bytes, sha256, object_key,"
    " expires_at, completed_at IS NOT NULL AS completed"
)

_READABLE = (
    "SELECT 1 FROM media_references r JOIN members m"
    " ON m.conversation_id = r.conversation_id AND m.user_id = $2"
    " WHERE r.media_id = $1 AND m.left_id IS NULL AND m.joined_id <= r.latest_message_id"
)


def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def _upload(row: asyncpg.Record) -> Upload:
    return Upload(
        media_id=row["media_id"],
        owner_user_id=row["owner_user_id"],
        kind=row["kind"],
        content_type=row["content_type"],
        size_bytes=row["size_bytes"],
        sha256=bytes(row["sha256"]),
        object_key=row["object_key"],
        expires_at_ms=_ms(row["expires_at"]),
        completed=row["completed"],
    )


class PostgresMediaStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, upload: Upload, day: dt.date, quota: DailyQuota) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            # The quota row is locked by the upsert: concurrent uploads of one
            # user are counted one after another, never both under the limit.
            used = await conn.fetchrow(
                "INSERT INTO media_quota (user_id, day, uploads, bytes) VALUES ($1, $2, 1, $3)"
                " ON CONFLICT (user_id, day) DO UPDATE SET"
                " uploads = media_quota.uploads + 1, bytes = media_quota.bytes + EXCLUDED.bytes"
                " RETURNING uploads, bytes",
                upload.owner_user_id,
                day,
                upload.size_bytes,
            )
            assert used is not None
            if used["uploads"] > quota.uploads or used["bytes"] > quota.bytes:
                raise ResourceExhausted(
                    "UPLOAD_QUOTA_EXCEEDED",
                    f"at most {quota.uploads} uploads and {quota.bytes} bytes a day",
                )
            try:
                await conn.execute(
                    "INSERT INTO media_uploads (media_id, owner_user_id, kind, content_type,"
                    " size_bytes, sha256, object_key, expires_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    upload.media_id,
                    upload.owner_user_id,
                    upload.kind,
                    upload.content_type,
                    upload.size_bytes,
                    upload.sha256,
                    upload.object_key,
                    _at(upload.expires_at_ms),
                )
            except asyncpg.ForeignKeyViolationError as exc:
                raise NotFound("USER_NOT_FOUND", "the uploading user is not registered") from exc

    async def get(self, media_id: str) -> Upload | None:
        row = await self._pool.fetchrow(
            f"SELECT {_UPLOAD_COLUMNS} FROM media_uploads WHERE media_id = $1", media_id
        )
        return None if row is None else _upload(row)

    async def complete(self, media_id: str, now_ms: int) -> bool:
        """Marks a checked upload complete unless its URL has expired
        meanwhile (then the sweep owns it); True if it is complete now."""
        done = await self._pool.fetchval(
            "UPDATE media_uploads SET completed_at = coalesce(completed_at, $2)"
            " WHERE media_id = $1 AND (completed_at IS NOT NULL OR expires_at > $2)"
            " RETURNING 1",
            media_id,
            _at(now_ms),
        )
        return done is not None

    async def reference(self, media_id: str, conversation_id: str, message_id: int) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            # Updating the upload's row, not only locking it, is what makes a
            # sweep that is deleting it at this moment re-check and spare it.
            marked = await conn.fetchval(
                "UPDATE media_uploads SET referenced_at = coalesce(referenced_at, now())"
                " WHERE media_id = $1 AND completed_at IS NOT NULL RETURNING 1",
                media_id,
            )
            if marked is None:
                raise NotFound("MEDIA_NOT_FOUND", "no such media")
            await conn.execute(
                "INSERT INTO media_references"
                " (media_id, conversation_id, first_message_id, latest_message_id)"
                " VALUES ($1, $2, $3, $3)"
                " ON CONFLICT (media_id, conversation_id) DO UPDATE SET"
                " first_message_id = LEAST(media_references.first_message_id, $3),"
                " latest_message_id = GREATEST(media_references.latest_message_id, $3)",
                media_id,
                conversation_id,
                message_id,
            )

    async def readable(self, media_id: str, user_id: str, conversation_id: str | None) -> bool:
        if conversation_id is None:
            row = await self._pool.fetchval(_READABLE + " LIMIT 1", media_id, user_id)
        else:
            row = await self._pool.fetchval(
                _READABLE + " AND r.conversation_id = $3", media_id, user_id, conversation_id
            )
        return row is not None

    async def expired_pending(self, before_ms: int, limit: int) -> list[Expired]:
        """Uploads never completed whose URL expired before ``before_ms``:
        they can no longer be completed, so nothing races their deletion."""
        rows = await self._pool.fetch(
            "SELECT media_id, object_key FROM media_uploads"
            " WHERE completed_at IS NULL AND expires_at < $1 ORDER BY expires_at LIMIT $2",
            _at(before_ms),
            limit,
        )
        return [Expired(r["media_id"], r["object_key"]) for r in rows]

    async def forget_pending(self, media_ids: list[str]) -> None:
        await self._pool.execute(
            "DELETE FROM media_uploads WHERE media_id = ANY($1::text[]) AND completed_at IS NULL",
            media_ids,
        )

    async def take_unreferenced(self, before_ms: int, limit: int) -> list[Expired]:
        """Deletes and returns the records of uploads completed before
        ``before_ms`` that no message carries. The caller deletes the objects
        after: a crash between leaves an orphan object, never a message
        whose media is gone."""
        rows = await self._pool.fetch(
            "DELETE FROM media_uploads WHERE media_id IN ("
            " SELECT media_id FROM media_uploads"
            " WHERE completed_at < $1 AND referenced_at IS NULL"
            " ORDER BY completed_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
            # Re-checked on the row as it is once locked: one referenced
            # meanwhile (reference() updates the row) is spared.
            " AND referenced_at IS NULL"
            " RETURNING media_id, object_key",
            _at(before_ms),
            limit,
        )
        return [Expired(r["media_id"], r["object_key"]) for r in rows]
