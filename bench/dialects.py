"""The wire protocols the load generator speaks: chatmesh's and Centrifugo's.

A dialect opens a user's connection (ready to send and receive: greeted,
subscribed), encodes the ``seq``-th send of a pair, and reads a server frame
as events. Targets are plain frozen values so they cross into the load
generator's worker processes; ``dialect_for`` builds the dialect there.

The load generator does not use ``chatmesh.client``: its reader decodes JSON
frames through ``json_format`` (tens of microseconds each), which at
thousands of messages per second would make the load generator, not the
server, the thing measured. Here a JSON client parses with the standard
library, as Centrifugo's clients do, so both systems get an equally lean
client.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from websockets.asyncio.client import ClientConnection, connect

from chatmesh.v1 import client_pb2, common_pb2

OPEN_TIMEOUT_S = 10.0  # a handshake through a saturated edge
BODY = b"benchmark message body of a typical length, about sixty bytes"

# ack: the sender's send was accepted (chatmesh: persisted); deliver: the
# receiver has it; error: refused (detail says why); ping: answer with pong().
Kind = Literal["ack", "deliver", "error", "ping"]
Event = tuple[Kind, int, str]  # kind, the pair's send sequence number, detail


@dataclass(frozen=True, slots=True)
class PairSpec:
    """One sender and its receiver; ``to`` is what the sender addresses
    (chatmesh: the receiver's user id; Centrifugo: the receiver's channel)."""

    index: int
    sender_token: str
    receiver_token: str
    to: str


@dataclass(frozen=True, slots=True)
class ChatmeshTarget:
    url: str  # the edge, ws://host:port/
    encoding: Literal["json", "binary"] = "json"


@dataclass(frozen=True, slots=True)
class CentrifugoTarget:
    url: str  # ws://host:port/connection/websocket


Target = ChatmeshTarget | CentrifugoTarget


class Dialect(Protocol):
    async def open(self, pair: PairSpec, sender: bool) -> ClientConnection:
        """A connection of the pair's sender (or receiver), ready to send to
        and to receive from ``pair.to``."""
        ...

    def encode_send(self, pair: PairSpec, seq: int) -> str | bytes: ...

    def events(self, data: str | bytes) -> Iterator[Event]: ...

    def pong(self) -> str | bytes: ...


def dialect_for(target: Target) -> Dialect:
    if isinstance(target, ChatmeshTarget):
        return ChatmeshDialect(target)
    return CentrifugoDialect(target)


def _seq_of(client_msg_id: str) -> int:
    return int(client_msg_id.rsplit(".", 1)[1])


class ChatmeshDialect:
    """The client protocol of README "Client protocol": a ``send`` frame per
    message; ``ack`` to the sender, ``deliver`` to the receiver."""

    def __init__(self, target: ChatmeshTarget) -> None:
        self._target = target
        self._binary = target.encoding == "binary"
        self._body_b64 = base64.b64encode(BODY).decode()

    async def open(self, pair: PairSpec, sender: bool) -> ClientConnection:
        token = pair.sender_token if sender else pair.receiver_token
        query = "?encoding=binary" if self._binary else ""
        ws = await connect(
            f"{self._target.url}{query}",
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=OPEN_TIMEOUT_S,
            max_queue=None,
        )
        first = await ws.recv()
        kinds = [kind for kind, _, _ in self._frame_kinds(first)]
        if kinds != ["hello"]:
            await ws.close()
            raise ConnectionError(f"expected hello, got {kinds or first!r}")
        return ws

    def _frame_kinds(self, data: str | bytes) -> Iterator[tuple[str, int, str]]:
        if isinstance(data, bytes):
            frame = client_pb2.ServerFrame.FromString(data)
            kind = frame.WhichOneof("kind") or ""
            if kind == "ack":
                yield kind, _seq_of(frame.ack.client_msg_id), ""
            elif kind == "deliver":
                yield kind, _seq_of(frame.deliver.message.client_msg_id), ""
            elif kind == "error":
                cid = frame.error.client_msg_id
                yield kind, _seq_of(cid) if cid else -1, frame.error.reason
            else:
                yield kind, -1, ""
            return
        frame_json = json.loads(data)
        if (ack := frame_json.get("ack")) is not None:
            yield "ack", _seq_of(ack["clientMsgId"]), ""
        elif (deliver := frame_json.get("deliver")) is not None:
            yield "deliver", _seq_of(deliver["message"]["clientMsgId"]), ""
        elif (error := frame_json.get("error")) is not None:
            cid = error.get("clientMsgId", "")
            yield "error", _seq_of(cid) if cid else -1, error.get("reason", "")
        else:
            yield next(iter(frame_json), ""), -1, ""

    def encode_send(self, pair: PairSpec, seq: int) -> str | bytes:
        client_msg_id = f"p{pair.index}.{seq}"
        if self._binary:
            return client_pb2.ClientFrame(
                request_id=client_msg_id,
                send=client_pb2.SendFrame(
                    client_msg_id=client_msg_id,
                    to_user_id=pair.to,
                    kind=common_pb2.MESSAGE_KIND_TEXT,
                    body=BODY,
                ),
            ).SerializeToString()
        return json.dumps(
            {
                "requestId": client_msg_id,
                "send": {
                    "clientMsgId": client_msg_id,
                    "toUserId": pair.to,
                    "kind": "MESSAGE_KIND_TEXT",
                    "body": self._body_b64,
                },
            }
        )

    def events(self, data: str | bytes) -> Iterator[Event]:
        for kind, seq, detail in self._frame_kinds(data):
            if kind in ("ack", "deliver", "error"):
                yield kind, seq, detail  # type: ignore[misc]

    def pong(self) -> str | bytes:
        return ""  # chatmesh pings at the WebSocket level; websockets answers


# Command ids below this are the connect and subscribe; a publish's id is
# ID_BASE + its sequence number, so its reply says which send it answers.
ID_BASE = 10


class CentrifugoDialect:
    """Centrifugo's bidirectional JSON protocol (v2): ``connect`` with a JWT,
    ``subscribe`` to the receiver's channel (sender too: publishing needs it,
    ``allow_publish_for_subscriber``), ``publish``; the publish reply is the
    ack, the publication pushed to the receiver the delivery. Replies may
    share a frame, one JSON object per line; ``{}`` is a ping, answered
    ``{}``."""

    def __init__(self, target: CentrifugoTarget) -> None:
        self._target = target
        self._body = BODY.decode()  # the same payload as a chatmesh message

    async def open(self, pair: PairSpec, sender: bool) -> ClientConnection:
        token = pair.sender_token if sender else pair.receiver_token
        ws = await connect(
            self._target.url,
            origin="http://127.0.0.1",  # type: ignore[arg-type]
            open_timeout=OPEN_TIMEOUT_S,
            max_queue=None,
        )
        await ws.send(json.dumps({"id": 1, "connect": {"token": token, "name": "bench"}}))
        await self._expect(ws, 1, "connect")
        await ws.send(json.dumps({"id": 2, "subscribe": {"channel": pair.to}}))
        await self._expect(ws, 2, "subscribe")
        return ws

    @staticmethod
    async def _expect(ws: ClientConnection, command_id: int, kind: str) -> None:
        while True:
            data = await ws.recv()
            for line in str(data).splitlines():
                reply = json.loads(line)
                if reply.get("id") == command_id:
                    if kind not in reply:
                        await ws.close()
                        raise ConnectionError(f"{kind} refused: {reply}")
                    return

    def encode_send(self, pair: PairSpec, seq: int) -> str | bytes:
        return json.dumps(
            {
                "id": ID_BASE + seq,
                "publish": {"channel": pair.to, "data": {"seq": seq, "body": self._body}},
            }
        )

    def events(self, data: str | bytes) -> Iterator[Event]:
        for line in str(data).splitlines():
            reply = json.loads(line)
            if not reply:
                yield "ping", -1, ""
            elif (push := reply.get("push")) is not None:
                if (pub := push.get("pub")) is not None:
                    yield "deliver", pub["data"]["seq"], ""
            elif (error := reply.get("error")) is not None:
                yield "error", reply.get("id", ID_BASE - 1) - ID_BASE, str(error.get("code"))
            elif "publish" in reply:
                yield "ack", reply["id"] - ID_BASE, ""

    def pong(self) -> str | bytes:
        return "{}"
