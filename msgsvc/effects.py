"""What happens after a request is answered: routing and receipt events.

Both run in the background, after the reply. A stored message was journaled
by the sender before its ack (``msgsvc.storage.route_journal``); the entry is
cleared once routed, so a crash or a failed routing attempt is replayed by
``msgsvc.recovery``. Receipt events are best effort: the watermark is
durable, and a device that misses the event reads the state on its next
sync or conversation list.
"""

from __future__ import annotations

import logging
import time

from chatmesh.tasks import TaskGroup
from chatmesh.v1 import client_pb2
from msgsvc import metrics
from msgsvc.group_receipts import GroupReceipts
from msgsvc.groups import GroupOutcome
from msgsvc.model import ReceiptOutcome, SendOutcome
from msgsvc.protos import watermark
from msgsvc.routing import Router
from msgsvc.storage.route_journal import RouteJournal

log = logging.getLogger(__name__)


class Effects:
    def __init__(
        self,
        router: Router,
        journal: RouteJournal,
        tasks: TaskGroup,
        group_receipts: GroupReceipts,
    ) -> None:
        self._group_receipts = group_receipts
        self._router = router
        self._journal = journal
        self._tasks = tasks

    def message_stored(self, outcome: SendOutcome) -> None:
        """Routes a 1:1 message the sender accepted (and journaled) in the
        background. A group message is in the message log: fan-out routes it."""
        if not outcome.via_log:
            self._tasks.spawn(
                "route", self._route(outcome, outcome.journal_entry, time.perf_counter())
            )

    def group_changed(self, outcome: GroupOutcome) -> None:
        """A recorded change is applied and in the message log: its journal
        entry, kept in case the transaction failed, can go."""
        if outcome.journal_entry:
            self._tasks.spawn(
                "journal-done", self._journal.done(self._journal.instance_id, outcome.journal_entry)
            )

    def receipt_moved(self, outcome: ReceiptOutcome, device_id: str) -> None:
        if not outcome.advanced:
            return
        if outcome.counted:
            state = outcome.state
            self._group_receipts.moved(
                state.conversation_id, max(state.delivered_message_id, state.read_message_id)
            )
        self._tasks.spawn("receipt-event", self._tell(outcome, device_id))

    async def _route(self, outcome: SendOutcome, entry_id: str, stored_s: float) -> None:
        try:
            await self._router.route(outcome)
            metrics.ROUTING_SECONDS.observe(time.perf_counter() - stored_s)
            await self._journal.done(self._journal.instance_id, entry_id)
        except Exception:
            # The entry stays in the journal; recovery routes it again.
            log.exception(
                "routing failed", extra={"fields": {"message_id": outcome.message.message_id}}
            )

    async def _tell(self, outcome: ReceiptOutcome, device_id: str) -> None:
        frame = client_pb2.ServerFrame(
            watermark=client_pb2.WatermarkFrame(watermark=watermark(outcome.state))
        )
        try:
            await self._router.broadcast(
                frame, outcome.member_ids, skip=(outcome.state.user_id, device_id)
            )
        except Exception:
            log.exception(
                "receipt event failed",
                extra={"fields": {"conversation_id": outcome.state.conversation_id}},
            )
