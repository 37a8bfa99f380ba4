"""Messages acknowledged but not yet routed, journaled in Redis per instance.

Routing runs after the ack, in the background, and dies with the process. So
before the ack msgsvc appends the message to a Redis stream of its own
instance and deletes the entry once routing is done. Whatever a crash leaves
is replayed: by the same instance when it restarts (its instance id is
stable across restarts of a pod), or by any live instance once the owner's
liveness key has expired for good.

Entries name a message, not its content: a replay reads the row back. The
guarantee is at least once: a replayed message may reach a device twice,
and the device drops the repeat by message id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chatmesh.coalescer import Coalescer
from chatmesh.redis_client import RedisClient
from msgsvc import metrics

ALIVE_TTL_S = 30  # three missed beats
# Far more than routing ever falls behind; trimming only guards memory if
# routing were down for hours (those messages still reach devices by sync).
MAX_ENTRIES = 1_000_000
MAX_PER_BATCH = 256  # journal writes or deletes sent in one pipeline


@dataclass(frozen=True, slots=True)
class RouteRef:
    conversation_id: str
    message_id: int


@dataclass(frozen=True, slots=True)
class JournalEntry:
    entry_id: str
    ref: RouteRef
    recorded_at_ms: int


class RouteJournal:
    """One instance's journal, plus access to the journals of the others.

    Keys are hash-tagged by instance so a journal and its liveness key share
    a Redis Cluster slot.
    """

    def __init__(self, client: RedisClient, key_prefix: str, instance_id: str) -> None:
        self._redis = client
        self._prefix = key_prefix
        self.instance_id = instance_id
        # Every send records and every routed message deletes: concurrent
        # ones share a pipeline (one round trip) instead of paying each.
        self._records: Coalescer[RouteRef, str] = Coalescer(
            self._record_many, max_batch=MAX_PER_BATCH, name="route-journal-records"
        )
        self._deletions: Coalescer[tuple[str, str], None] = Coalescer(
            self._delete_many, max_batch=MAX_PER_BATCH, name="route-journal-deletions"
        )

    def _journal(self, instance_id: str) -> str:
        return f"{self._prefix}routes:{{{instance_id}}}"

    def _alive(self, instance_id: str) -> str:
        return f"{self._prefix}routes:{{{instance_id}}}:alive"

    def _adopting(self, instance_id: str) -> str:
        return f"{self._prefix}routes:{{{instance_id}}}:adopting"

    @property
    def _instances(self) -> str:
        return f"{self._prefix}routes-instances"

    async def record(self, ref: RouteRef) -> str:
        """Appends an entry to this instance's journal; returns its id."""
        return await self._records.submit(ref)

    async def done(self, instance_id: str, entry_id: str) -> None:
        """Deletes an entry (of any instance's journal) once its message is routed."""
        await self._deletions.submit((instance_id, entry_id))

    async def _record_many(self, refs: Sequence[RouteRef]) -> list[str]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                pipe.xadd(
                    self._journal(self.instance_id),
                    {"c": ref.conversation_id, "m": str(ref.message_id)},
                    maxlen=MAX_ENTRIES,
                    approximate=True,
                )
            entry_ids = [_text(entry_id) for entry_id in await pipe.execute()]
        metrics.JOURNAL_APPENDS.inc(len(entry_ids))
        return entry_ids

    async def _delete_many(self, entries: Sequence[tuple[str, str]]) -> list[None]:
        by_instance: dict[str, list[str]] = {}
        for instance_id, entry_id in entries:
            by_instance.setdefault(instance_id, []).append(entry_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for instance_id, entry_ids in by_instance.items():
                pipe.xdel(self._journal(instance_id), *entry_ids)
            await pipe.execute()
        return [None] * len(entries)

    async def beat(self) -> None:
        """Marks this instance alive and listed, so others leave its journal be."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._alive(self.instance_id), b"1", ex=ALIVE_TTL_S)
            pipe.sadd(self._instances, self.instance_id)
            await pipe.execute()

    async def entries(
        self, instance_id: str, *, recorded_before_ms: int | None, limit: int
    ) -> list[JournalEntry]:
        """The oldest entries, all or those recorded before the given instant
        (entry ids carry Redis's clock, which may differ from ours a little)."""
        upper = "+" if recorded_before_ms is None else f"{recorded_before_ms}"
        rows = await self._redis.xrange(self._journal(instance_id), min="-", max=upper, count=limit)
        entries = []
        for raw_id, fields in rows or ():
            if fields is None:  # an entry deleted while being read
                continue
            entry_id = _text(raw_id)
            entries.append(
                JournalEntry(
                    entry_id=entry_id,
                    ref=RouteRef(_text(fields[b"c"]), int(fields[b"m"])),
                    recorded_at_ms=int(entry_id.split("-", 1)[0]),
                )
            )
        return entries

    async def orphaned(self) -> list[str]:
        """Listed instances other than this one whose liveness has expired."""
        members = [_text(m) for m in await self._redis.smembers(self._instances)]  # type: ignore[misc]
        others = [m for m in members if m != self.instance_id]
        if not others:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for other in others:
                pipe.exists(self._alive(other))
            alive = await pipe.execute()
        return [other for other, up in zip(others, alive, strict=True) if not up]

    async def adopt(self, instance_id: str, hold_s: int) -> bool:
        """Takes the right to replay a dead instance's journal for ``hold_s``;
        False if another instance holds it."""
        return bool(
            await self._redis.set(self._adopting(instance_id), self.instance_id, nx=True, ex=hold_s)
        )

    async def forget_if_empty(self, instance_id: str) -> bool:
        """Drops a dead instance from the list once its journal is empty."""
        if await self._redis.xlen(self._journal(instance_id)):
            return False
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.srem(self._instances, instance_id)
            pipe.delete(self._journal(instance_id), self._adopting(instance_id))
            await pipe.execute()
        return True


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
