"""gRPC edge of the message service: proto in, domain calls, proto out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from chatmesh.errors import ChatmeshError, InvalidArgument, error_frame, grpc_status
from chatmesh.tasks import TaskGroup
from chatmesh.v1 import client_pb2, message_service_pb2, message_service_pb2_grpc
from msgsvc.failures import classify
from msgsvc.history import HistoryReader, parse_page_token
from msgsvc.model import SendCommand, SendOutcome
from msgsvc.routing import Router
from msgsvc.sending import MessageSender

log = logging.getLogger(__name__)

# Frames of one gateway stream processed at once. Beyond this the reader stops
# pulling from the stream and gRPC flow control pushes back on the gateway.
MAX_IN_FLIGHT_PER_STREAM = 512
# Replies gathered into one response message: each gRPC message costs ~100 µs
# of CPU per side in Python, so batching is what keeps a stream fast.
MAX_REPLIES_PER_BATCH = 256


class MessageServicer(message_service_pb2_grpc.MessageServiceServicer):
    def __init__(
        self, *, sender: MessageSender, history: HistoryReader, router: Router, tasks: TaskGroup
    ) -> None:
        self._sender = sender
        self._history = history
        self._router = router
        self._tasks = tasks

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
        )
        try:
            if not request.sender_user_id:
                raise InvalidArgument("MISSING_SENDER", "sender_user_id is required")
            outcome = await self._sender.send(command)
        except Exception as exc:
            await _abort(context, exc)
            raise  # unreachable: abort raises
        self._route_later(outcome)
        return message_service_pb2.SendMessageResponse(
            message=outcome.message.to_proto(), duplicate=outcome.duplicate
        )

    async def ListMessages(
        self, request: message_service_pb2.ListMessagesRequest, context: grpc.aio.ServicerContext
    ) -> message_service_pb2.ListMessagesResponse:
        try:
            page = await self._history.page(
                request.requester_user_id,
                request.conversation_id,
                before_id=parse_page_token(request.page_token),
                page_size=request.page_size,
            )
        except Exception as exc:
            await _abort(context, exc)
            raise
        return message_service_pb2.ListMessagesResponse(
            messages=[m.to_proto() for m in page.messages],
            next_page_token=str(page.next_before_id) if page.next_before_id else "",
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

        async def handle(inbound: message_service_pb2.InboundFrame) -> None:
            try:
                reply = await self._handle_frame(inbound)
                replies.put_nowait(
                    message_service_pb2.OutboundFrame(
                        in_reply_to=inbound.seq, connection_id=inbound.connection_id, frame=reply
                    )
                )
            finally:
                slots.release()

        async def read_all() -> None:
            try:
                batch: message_service_pb2.ConnectRequest | None = first
                stream = aiter(request_iterator)
                while batch is not None:
                    for inbound in batch.frames:
                        await slots.acquire()
                        handlers.spawn("frame", handle(inbound))
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
        finally:
            reader.cancel()
            await handlers.close()
            log.info("gateway stream closed", extra={"fields": {"gateway_id": first.gateway_id}})

    async def _handle_frame(
        self, inbound: message_service_pb2.InboundFrame
    ) -> client_pb2.ServerFrame:
        frame = inbound.frame
        kind = frame.WhichOneof("kind")
        client_msg_id = frame.send.client_msg_id if kind == "send" else ""
        try:
            if kind == "send":
                send = frame.send
                target = send.WhichOneof("target")
                outcome = await self._sender.send(
                    SendCommand(
                        sender_user_id=inbound.user_id,
                        sender_device_id=inbound.device_id,
                        client_msg_id=send.client_msg_id,
                        conversation_id=send.conversation_id
                        if target == "conversation_id"
                        else None,
                        to_user_id=send.to_user_id if target == "to_user_id" else None,
                        kind=send.kind,
                        body=send.body,
                    )
                )
                self._route_later(outcome)
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
            raise InvalidArgument("UNSUPPORTED_FRAME", f"frame kind {kind!r} is not handled here")
        except Exception as exc:
            error = classify(exc)
            if error is None:
                log.exception("frame failed", extra={"fields": {"kind": kind}})
                error = ChatmeshError("INTERNAL", "internal error")
            return error_frame(error, request_id=frame.request_id, client_msg_id=client_msg_id)

    def _route_later(self, outcome: SendOutcome) -> None:
        self._tasks.spawn("route", self._route(outcome))

    async def _route(self, outcome: SendOutcome) -> None:
        try:
            await self._router.route(outcome)
        except Exception:
            # The message is durable; recipients recover it on sync.
            log.exception(
                "routing failed",
                extra={"fields": {"message_id": outcome.message.message_id}},
            )


async def _abort(context: grpc.aio.ServicerContext, exc: Exception) -> None:
    error = classify(exc)
    if error is None:
        log.exception("request failed")
        error = ChatmeshError("INTERNAL", "internal error")
    await context.abort_with_status(grpc_status(error))
