"""What happens after a request is answered: routing and receipt events.

Both run in the background, after the reply, and are best effort: the
message or watermark is already durable, and a device that misses the live
frame catches up on its next sync or conversation list.
"""

from __future__ import annotations

import logging

from chatmesh.tasks import TaskGroup
from chatmesh.v1 import client_pb2
from msgsvc.model import ReceiptOutcome, SendOutcome
from msgsvc.protos import watermark
from msgsvc.routing import Router

log = logging.getLogger(__name__)


class Effects:
    def __init__(self, router: Router, tasks: TaskGroup) -> None:
        self._router = router
        self._tasks = tasks

    def message_stored(self, outcome: SendOutcome) -> None:
        self._tasks.spawn("route", self._route(outcome))

    def receipt_moved(self, outcome: ReceiptOutcome, device_id: str) -> None:
        if outcome.advanced:
            self._tasks.spawn("receipt-event", self._tell(outcome, device_id))

    async def _route(self, outcome: SendOutcome) -> None:
        try:
            await self._router.route(outcome)
        except Exception:
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
