"""gRPC edge of the message service: proto in, domain calls, proto out."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc

from chatmesh.errors import InvalidArgument, grpc_status
from chatmesh.failures import abort_with
from chatmesh.mesh.authz import acting_client
from chatmesh.tasks import TaskGroup
from chatmesh.v1 import message_service_pb2, message_service_pb2_grpc
from msgsvc.frame_observer import FrameObserver
from msgsvc.messaging import Messaging
from msgsvc.model import SendCommand
from msgsvc.protos import conversation_summary, member_receipt, watermark

log = logging.getLogger(__name__)

# Frames of one gateway stream being processed or waiting for their reply to
# be written. Beyond this the reader stops pulling from the stream and gRPC
# flow control pushes back on the gateway; a gateway that stops reading
# replies therefore holds at most this many in msgsvc's memory.
MAX_IN_FLIGHT_PER_STREAM = 512
# Replies gathered into one response message: each gRPC message costs ~100 µs
# of CPU per side in Python, so batching is what keeps a stream fast.
MAX_REPLIES_PER_BATCH = 256


class MessageServicer(message_service_pb2_grpc.MessageServiceServicer):
    def __init__(self, messaging: Messaging, frames: FrameObserver) -> None:
        self._m = messaging
        self._frames = frames

    async def SendMessage(
        self, request: message_service_pb2.SendMessageRequest, context: grpc.aio.ServicerContext
    ) -> message_service_pb2.SendMessageResponse:
        command = SendCommand(
            sender_user_id=request.sender_user_id,
            sender_device_id=request.sender_device_id,
            client_msg_id=request.client_msg_id,
            conversation_id=request.conversation_id
            if request.HasField("conversation_id")
            else None,
            to_user_id=request.to_user_id if request.HasField("to_user_id") else None,
            kind=request.kind,
            body=request.body,
            media=request.media.SerializeToString() if request.HasField("media") else b"",
            on_behalf_of=acting_client(context),
        )
        try:
            if not request.sender_user_id:
                raise InvalidArgument("MISSING_SENDER", "sender_user_id is required")
            outcome = await self._m.sender.send(command)
        except Exception as exc:
            await abort_with(context, exc)
        self._m.effects.message_stored(outcome)
        return message_service_pb2.SendMessageResponse(
            message=outcome.message.to_proto(), duplicate=outcome.duplicate
        )

    async def ListMessages(
        self, request: message_service_pb2.ListMessagesRequest, context: grpc.aio.ServicerContext
    ) -> message_service_pb2.ListMessagesResponse:
        try:
            page = await self._m.history.page(
                request.requester_user_id,
                request.conversation_id,
                page_token=request.page_token,
                page_size=request.page_size,
            )
        except Exception as exc:
            await abort_with(context, exc)
        return message_service_pb2.ListMessagesResponse(
            messages=[m.to_proto() for m in page.messages],
            next_page_token=page.next_page_token,
        )

    async def Sync(
        self, request: message_service_pb2.SyncRequest, context: grpc.aio.ServicerContext
    ) -> message_service_pb2.SyncResponse:
        try:
            summary = await self._m.sync.summary(request.user_id, request.cursor)
        except Exception as exc:
            await abort_with(context, exc)
        return message_service_pb2.SyncResponse(
            conversations=[conversation_summary(v) for v in summary.conversations],
            next_cursor=summary.next_cursor,
            gap=summary.gap,
            window_floor_id=summary.floor_id,
        )

    async def SyncConversation(
        self,
        request: message_service_pb2.SyncConversationRequest,
        context: grpc.aio.ServicerContext,
    ) -> message_service_pb2.SyncConversationResponse:
        try:
            page = await self._m.sync.page(
                request.user_id,
                request.conversation_id,
                cursor=request.cursor,
                page_token=request.page_token,
                page_size=request.page_size,
                held_ids=request.held_message_ids,
            )
        except Exception as exc:
            await abort_with(context, exc)
        return message_service_pb2.SyncConversationResponse(
            messages=[m.to_proto() for m in page.messages], next_page_token=page.next_page_token
        )

    async def MarkReceipt(
        self, request: message_service_pb2.MarkReceiptRequest, context: grpc.aio.ServicerContext
    ) -> message_service_pb2.MarkReceiptResponse:
        try:
            outcome = await self._m.receipts.mark(
                request.user_id, request.conversation_id, request.kind, request.message_id
            )
        except Exception as exc:
            await abort_with(context, exc)
        self._m.effects.receipt_moved(outcome, request.device_id)
        return message_service_pb2.MarkReceiptResponse(
            watermark=watermark(outcome.state), advanced=outcome.advanced
        )

    async def ListConversations(
        self,
        request: message_service_pb2.ListConversationsRequest,
        context: grpc.aio.ServicerContext,
    ) -> message_service_pb2.ListConversationsResponse:
        try:
            page = await self._m.conversations.page(
                request.user_id, page_size=request.page_size, page_token=request.page_token
            )
        except Exception as exc:
            await abort_with(context, exc)
        return message_service_pb2.ListConversationsResponse(
            conversations=[conversation_summary(v) for v in page.conversations],
            next_page_token=page.next_page_token,
        )

    async def GetReceipts(
        self, request: message_service_pb2.GetReceiptsRequest, context: grpc.aio.ServicerContext
    ) -> message_service_pb2.GetReceiptsResponse:
        try:
            counts, members = await self._m.group_receipts.details(
                request.user_id, request.conversation_id, request.message_id
            )
        except Exception as exc:
            await abort_with(context, exc)
        return message_service_pb2.GetReceiptsResponse(
            counts=counts.to_proto(), members=[member_receipt(m) for m in members]
        )

    async def Connect(
        self,
        request_iterator: AsyncIterator[message_service_pb2.ConnectRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[message_service_pb2.ConnectResponse]:
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        if not first.gateway_id:
            await context.abort_with_status(
                grpc_status(
                    InvalidArgument("MISSING_GATEWAY_ID", "first request must name the gateway")
                )
            )
        # Tells the gateway the stream is established before any reply exists.
        await context.send_initial_metadata(())
        replies: asyncio.Queue[message_service_pb2.OutboundFrame | None] = asyncio.Queue()
        handlers = TaskGroup(f"connect:{first.gateway_id}")
        slots = asyncio.Semaphore(MAX_IN_FLIGHT_PER_STREAM)

        async def handle(inbound: message_service_pb2.InboundFrame, arrived_s: float) -> None:
            try:
                reply = await self._frames.handle(inbound, arrived_s)
            except BaseException:
                slots.release()
                raise
            # The slot is released once the reply is taken for writing.
            if reply.WhichOneof("kind") is None:
                # A frame without an answer (typing) is still acknowledged,
                # so the gateway stops holding it as in flight; addressed to
                # no connection, it reaches no client.
                replies.put_nowait(message_service_pb2.OutboundFrame(in_reply_to=inbound.seq))
                return
            replies.put_nowait(
                message_service_pb2.OutboundFrame(
                    in_reply_to=inbound.seq, connection_id=inbound.connection_id, frame=reply
                )
            )

        async def read_all() -> None:
            try:
                batch: message_service_pb2.ConnectRequest | None = first
                stream = aiter(request_iterator)
                while batch is not None:
                    arrived_s = time.perf_counter()
                    for inbound in batch.frames:
                        await slots.acquire()
                        handlers.spawn("frame", handle(inbound, arrived_s))
                    batch = await anext(stream, None)
                await handlers.join()  # the gateway closed its side: finish what is in flight
            except grpc.aio.AioRpcError as exc:
                # The gateway went away; its unanswered frames are failed on
                # its side and resent by the clients.
                log.info(
                    "gateway stream broken",
                    extra={"fields": {"gateway_id": first.gateway_id, "code": exc.code().name}},
                )
            finally:
                replies.put_nowait(None)

        log.info("gateway stream opened", extra={"fields": {"gateway_id": first.gateway_id}})
        reader = asyncio.create_task(read_all(), name=f"connect-reader:{first.gateway_id}")
        try:
            while True:
                item = await replies.get()
                if item is None:
                    break
                batch_out = [item]
                while len(batch_out) < MAX_REPLIES_PER_BATCH and not replies.empty():
                    nxt = replies.get_nowait()
                    if nxt is None:
                        replies.put_nowait(None)
                        break
                    batch_out.append(nxt)
                yield message_service_pb2.ConnectResponse(frames=batch_out)
                for _ in batch_out:
                    slots.release()
        finally:
            reader.cancel()
            await handlers.close()
            log.info("gateway stream closed", extra={"fields": {"gateway_id": first.gateway_id}})
