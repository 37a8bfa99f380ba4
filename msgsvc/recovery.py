"""Replaying journaled routes that a crash or a failure left behind.

At startup, everything the previous process of this instance left. Then,
every ``RECOVERY_INTERVAL_S``:

- this instance's own entries older than ``STALE_AFTER_MS``: routing
  attempts that failed (sessionsvc down, say);
- the journals of instances whose liveness expired, one adopter at a time.

An entry whose row does not exist yet may still be committing (see
``msgsvc.visibility``); it is kept until the commit bound has passed, then
dropped: its send was never acknowledged. A group change's system message
is applied to the membership again before it is routed (decision 0011).
"""

from __future__ import annotations

import logging

from chatmesh.clock import Clock
from chatmesh.v1 import common_pb2
from msgsvc import metrics
from msgsvc.group_events import decode
from msgsvc.message_log import LogEntry, MessageLog
from msgsvc.model import SendOutcome
from msgsvc.routing import Router
from msgsvc.storage.directory import Directory
from msgsvc.storage.groups import GroupStore
from msgsvc.storage.messages import MessageStore
from msgsvc.storage.route_journal import JournalEntry, RouteJournal
from msgsvc.visibility import COMMIT_BOUND_MS, age_ms

log = logging.getLogger(__name__)

RECOVERY_INTERVAL_S = 10.0
# Routing a message takes milliseconds; an entry this old is not in flight.
STALE_AFTER_MS = 20_000
BATCH = 500
ADOPTION_HOLD_S = 60


class RouteRecovery:
    def __init__(
        self,
        journal: RouteJournal,
        directory: Directory,
        messages: MessageStore,
        router: Router,
        clock: Clock,
        groups: GroupStore,
        log: MessageLog,
    ) -> None:
        self._groups = groups
        self._log = log
        self._journal = journal
        self._directory = directory
        self._messages = messages
        self._router = router
        self._clock = clock

    async def replay_previous_life(self) -> int:
        """At startup, before serving: everything in this instance's journal
        was left by its previous process, which is dead, so none of it is in
        flight any more."""
        await self._journal.beat()
        return await self._drain(self._journal.instance_id, stale_only=False)

    async def run_once(self) -> int:
        """One round; returns how many messages were routed again."""
        await self._journal.beat()
        routed = await self._drain(self._journal.instance_id, stale_only=True)
        for dead in await self._journal.orphaned():
            if await self._journal.adopt(dead, ADOPTION_HOLD_S):
                metrics.JOURNAL_ADOPTIONS.inc()
                routed += await self._drain(dead, stale_only=False)
                await self._journal.forget_if_empty(dead)
        return routed

    async def _drain(self, instance_id: str, *, stale_only: bool) -> int:
        before = self._clock.now_ms() - STALE_AFTER_MS if stale_only else None
        routed = 0
        while True:
            entries = await self._journal.entries(
                instance_id, recorded_before_ms=before, limit=BATCH
            )
            settled = 0
            for entry in entries:
                outcome = await self._replay(instance_id, entry)
                settled += outcome is not None
                routed += outcome is True
            if len(entries) < BATCH or settled == 0:
                break
        if routed:
            log.info(
                "routes replayed",
                extra={"fields": {"instance": instance_id, "messages": routed}},
            )
        return routed

    async def _replay(self, instance_id: str, entry: JournalEntry) -> bool | None:
        """True: routed; False: dropped (never written); None: not yet settled."""
        ref = entry.ref
        message = await self._messages.get(ref.conversation_id, ref.message_id)
        if message is None:
            if age_ms(ref.message_id, self._clock.now_ms()) <= COMMIT_BOUND_MS:
                return None  # may still land; look again next round
            await self._journal.done(instance_id, entry.entry_id)
            metrics.REPLAYS_DROPPED.inc()
            return False
        if message.kind == common_pb2.MESSAGE_KIND_SYSTEM:
            # The change may have been recorded but not applied, nor appended
            # (its transaction failed after the write): doing either again is
            # harmless. The fan-out workers route it from the log.
            await self._groups.apply(ref.conversation_id, ref.message_id, decode(message.body))
            await self._log.append(LogEntry(ref.conversation_id, ref.message_id, message.kind))
            await self._journal.done(instance_id, entry.entry_id)
            metrics.REPLAYS_ROUTED.inc()
            return True
        conversation = await self._directory.conversation(ref.conversation_id)
        members = conversation.recipients(message.message_id) if conversation is not None else ()
        await self._router.route(SendOutcome(message, members, duplicate=True))
        await self._journal.done(instance_id, entry.entry_id)
        metrics.REPLAYS_ROUTED.inc()
        return True
