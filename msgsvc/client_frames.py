"""Client frames arriving over a gateway stream: proto in, domain, proto out.

Every reply names the frame it answers by request_id. Failures become error
frames; the stream and the connection carry on.
"""

from __future__ import annotations

import logging

from chatmesh.errors import ChatmeshError, InvalidArgument, error_frame
from chatmesh.failures import classify
from chatmesh.v1 import client_pb2
from msgsvc import group_requests, metrics
from msgsvc.budgets import UserBudgets
from msgsvc.devices import DeviceCheck
from msgsvc.messaging import Messaging
from msgsvc.model import SendCommand
from msgsvc.protos import conversation_summary, group_info, member_receipt, watermark
from msgsvc.push_protos import credential_from_proto
from msgsvc.typing_activity import TypingIndicators

log = logging.getLogger(__name__)


# Frames that write a group's system message: the user's write budget.
_GROUP_WRITES = frozenset({"create_group", "change_group"})


class ClientFrameHandler:
    def __init__(
        self,
        messaging: Messaging,
        devices: DeviceCheck,
        budgets: UserBudgets,
        typing: TypingIndicators,
    ) -> None:
        self._m = messaging
        self._devices = devices
        self._budgets = budgets
        self._typing = typing

    async def handle(
        self, user_id: str, device_id: str, frame: client_pb2.ClientFrame
    ) -> client_pb2.ServerFrame:
        """The answer to ``frame``; a frame that has none (typing) gets an
        empty ServerFrame, which reaches no client."""
        kind = frame.WhichOneof("kind")
        try:
            if kind in _GROUP_WRITES:
                await self._budgets.write(user_id)  # the device: in the group domain
            elif kind == "typing":
                # Not counted against the user's budget: that is a Redis
                # write per frame, and typing writes nothing anywhere. It is
                # bounded per device in process instead.
                await self._devices.require(user_id, device_id)
            elif kind != "send":  # a send checks both once its id is taken
                # Every request, not only writes: a removed device may no
                # longer sync, read history or mark anything either.
                await self._devices.require(user_id, device_id)
                await self._budgets.request(user_id)
            if kind == "send":
                return await self._send(user_id, device_id, frame)
            if kind == "typing":
                await self._typing.typing(
                    user_id, device_id, frame.typing.conversation_id, frame.typing.typing
                )
                return client_pb2.ServerFrame()
            if kind == "sync":
                return await self._sync(user_id, frame)
            if kind == "sync_conversation":
                return await self._sync_conversation(user_id, frame)
            if kind == "mark":
                return await self._mark(user_id, device_id, frame)
            if kind == "history":
                return await self._history(user_id, frame)
            if kind == "list_conversations":
                return await self._list_conversations(user_id, frame)
            if kind == "create_group":
                outcome = await group_requests.create(
                    self._m.groups, user_id, device_id, frame.create_group
                )
                self._m.effects.group_changed(outcome)
                return group_requests.group_frame(frame.request_id, outcome)
            if kind == "change_group":
                outcome = await group_requests.change(
                    self._m.groups, user_id, device_id, frame.change_group
                )
                self._m.effects.group_changed(outcome)
                return group_requests.group_frame(frame.request_id, outcome)
            if kind == "get_receipts":
                request = frame.get_receipts
                counts, members = await self._m.group_receipts.details(
                    user_id, request.conversation_id, request.message_id
                )
                return client_pb2.ServerFrame(
                    receipt_details=client_pb2.ReceiptDetailsFrame(
                        request_id=frame.request_id,
                        conversation_id=request.conversation_id,
                        counts=counts.to_proto(),
                        members=[member_receipt(m) for m in members],
                    )
                )
            if kind == "get_group":
                group = await self._m.groups.get(user_id, frame.get_group.conversation_id)
                return client_pb2.ServerFrame(
                    group=client_pb2.GroupFrame(
                        request_id=frame.request_id, group=group_info(group)
                    )
                )
            if kind == "register_push":
                return await self._register_push(user_id, device_id, frame)
            if kind == "mute_conversation":
                mute_request = frame.mute_conversation
                mute = await self._m.push_settings.mute(
                    user_id, mute_request.conversation_id, mute_request.muted, mute_request.until_ms
                )
                return client_pb2.ServerFrame(
                    conversation_muted=client_pb2.ConversationMutedFrame(
                        request_id=frame.request_id,
                        conversation_id=mute_request.conversation_id,
                        muted=mute.muted,
                        until_ms=mute.until_ms,
                    )
                )
            if kind == "create_upload":
                upload = await self._m.media.create_upload(user_id, frame.create_upload)
                upload.request_id = frame.request_id
                return client_pb2.ServerFrame(upload=upload)
            if kind == "complete_upload":
                upload = await self._m.media.complete_upload(
                    user_id, frame.complete_upload.media_id
                )
                upload.request_id = frame.request_id
                return client_pb2.ServerFrame(upload=upload)
            if kind == "get_download_url":
                download = await self._m.media.download_url(user_id, frame.get_download_url)
                download.request_id = frame.request_id
                return client_pb2.ServerFrame(download_url=download)
            raise InvalidArgument("UNSUPPORTED_FRAME", f"frame kind {kind!r} is not handled here")
        except Exception as exc:
            error = classify(exc)
            if error is None:
                log.exception("frame failed", extra={"fields": {"kind": kind}})
                error = ChatmeshError("INTERNAL", "internal error")
            client_msg_id = frame.send.client_msg_id if kind == "send" else ""
            return error_frame(error, request_id=frame.request_id, client_msg_id=client_msg_id)

    async def _send(
        self, user_id: str, device_id: str, frame: client_pb2.ClientFrame
    ) -> client_pb2.ServerFrame:
        send = frame.send
        target = send.WhichOneof("target")
        outcome = await self._m.sender.send(
            SendCommand(
                sender_user_id=user_id,
                sender_device_id=device_id,
                client_msg_id=send.client_msg_id,
                conversation_id=send.conversation_id if target == "conversation_id" else None,
                to_user_id=send.to_user_id if target == "to_user_id" else None,
                kind=send.kind,
                body=send.body,
                media=send.media.SerializeToString() if send.HasField("media") else b"",
            )
        )
        self._m.effects.message_stored(outcome)
        message = outcome.message
        return client_pb2.ServerFrame(
            ack=client_pb2.AckFrame(
                request_id=frame.request_id,
                client_msg_id=message.client_msg_id,
                message_id=message.message_id,
                conversation_id=message.conversation_id,
                created_at_ms=message.created_at_ms,
            )
        )

    async def _sync(self, user_id: str, frame: client_pb2.ClientFrame) -> client_pb2.ServerFrame:
        summary = await self._m.sync.summary(user_id, frame.sync.cursor)
        return client_pb2.ServerFrame(
            sync_summary=client_pb2.SyncSummaryFrame(
                request_id=frame.request_id,
                conversations=[conversation_summary(v) for v in summary.conversations],
                next_cursor=summary.next_cursor,
                gap=summary.gap,
                window_floor_id=summary.floor_id,
            )
        )

    async def _sync_conversation(
        self, user_id: str, frame: client_pb2.ClientFrame
    ) -> client_pb2.ServerFrame:
        request = frame.sync_conversation
        page = await self._m.sync.page(
            user_id,
            request.conversation_id,
            cursor=request.cursor,
            page_token=request.page_token,
            page_size=request.page_size,
            held_ids=request.held_message_ids,
        )
        metrics.SYNC_PAGE_SENT.inc(len(page.messages))
        metrics.SYNC_PAGE_HELD.inc(page.held_left_out)
        return client_pb2.ServerFrame(
            sync_page=client_pb2.SyncPageFrame(
                request_id=frame.request_id,
                conversation_id=request.conversation_id,
                messages=[m.to_proto() for m in page.messages],
                next_page_token=page.next_page_token,
            )
        )

    async def _mark(
        self, user_id: str, device_id: str, frame: client_pb2.ClientFrame
    ) -> client_pb2.ServerFrame:
        mark = frame.mark
        outcome = await self._m.receipts.mark(
            user_id, mark.conversation_id, mark.kind, mark.message_id
        )
        self._m.effects.receipt_moved(outcome, device_id)
        return client_pb2.ServerFrame(
            watermark=client_pb2.WatermarkFrame(
                request_id=frame.request_id, watermark=watermark(outcome.state)
            )
        )

    async def _history(self, user_id: str, frame: client_pb2.ClientFrame) -> client_pb2.ServerFrame:
        request = frame.history
        page = await self._m.history.page(
            user_id,
            request.conversation_id,
            page_token=request.page_token,
            page_size=request.page_size,
        )
        return client_pb2.ServerFrame(
            history_page=client_pb2.HistoryPageFrame(
                request_id=frame.request_id,
                conversation_id=request.conversation_id,
                messages=[m.to_proto() for m in page.messages],
                next_page_token=page.next_page_token,
            )
        )

    async def _list_conversations(
        self, user_id: str, frame: client_pb2.ClientFrame
    ) -> client_pb2.ServerFrame:
        request = frame.list_conversations
        page = await self._m.conversations.page(
            user_id, page_size=request.page_size, page_token=request.page_token
        )
        return client_pb2.ServerFrame(
            conversation_list=client_pb2.ConversationListFrame(
                request_id=frame.request_id,
                conversations=[conversation_summary(v) for v in page.conversations],
                next_page_token=page.next_page_token,
            )
        )

    async def _register_push(
        self, user_id: str, device_id: str, frame: client_pb2.ClientFrame
    ) -> client_pb2.ServerFrame:
        request = frame.register_push
        device = await self._m.push_settings.register(
            user_id,
            device_id,
            credential_from_proto(request.push) if request.HasField("push") else None,
            request.show_previews if request.HasField("show_previews") else None,
        )
        return client_pb2.ServerFrame(
            push_registered=client_pb2.PushRegisteredFrame(
                request_id=frame.request_id,
                has_push=device.push_platform is not None,
                show_previews=device.show_previews,
            )
        )
