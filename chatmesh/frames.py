"""The WebSocket frame codec: one proto contract, two encodings.

Text WebSocket frames carry the canonical protobuf JSON mapping, binary frames
the protobuf bytes. Decoding failures raise ``InvalidArgument`` with reason
``MALFORMED_FRAME`` so the edge can answer with an error frame and keep the
connection.
"""

from __future__ import annotations

import enum

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from chatmesh.errors import InvalidArgument
from chatmesh.v1 import client_pb2


class Encoding(enum.Enum):
    JSON = "json"
    BINARY = "binary"


# WebSocket close codes of the client protocol (README, "Close codes").
CLOSE_SERVICE_RESTART = 1012  # the gateway restarts: reconnect after a random delay
CLOSE_TRY_AGAIN_LATER = 1013  # the client fell too far behind reading: reconnect and sync
# A newer connection of the same device took over. Clients must not reconnect
# on this code, or two copies of one device would keep evicting each other.
CLOSE_SUPERSEDED = 4001
# The token expired: reconnect with a fresh one.
CLOSE_TOKEN_EXPIRED = 4002
# The device was removed from the account. Clients must not reconnect with
# this device's tokens: every one issued before the removal is refused.
CLOSE_DEVICE_REVOKED = 4003

# Every answer frame carries the request_id it answers: the contract says
# which kinds are answers, so a new one is matched without being listed here.
_REPLY_KINDS = frozenset(
    field.name
    for field in client_pb2.ServerFrame.DESCRIPTOR.oneofs_by_name["kind"].fields
    if field.message_type is not None and "request_id" in field.message_type.fields_by_name
)


def encoding_of(data: str | bytes) -> Encoding:
    return Encoding.JSON if isinstance(data, str) else Encoding.BINARY


def decode_client_frame(data: str | bytes) -> client_pb2.ClientFrame:
    frame = client_pb2.ClientFrame()
    try:
        if isinstance(data, str):
            json_format.Parse(data, frame)
        else:
            frame.ParseFromString(data)
    except (json_format.ParseError, DecodeError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgument("MALFORMED_FRAME", f"cannot decode frame: {exc}") from exc
    if frame.WhichOneof("kind") is None:
        raise InvalidArgument("MALFORMED_FRAME", "frame has no recognised kind")
    return frame


def encode_server_frame(frame: client_pb2.ServerFrame, encoding: Encoding) -> str | bytes:
    if encoding is Encoding.JSON:
        return json_format.MessageToJson(frame, indent=None)
    return frame.SerializeToString()


def encode_client_frame(frame: client_pb2.ClientFrame, encoding: Encoding) -> str | bytes:
    if encoding is Encoding.JSON:
        return json_format.MessageToJson(frame, indent=None)
    return frame.SerializeToString()


def decode_server_frame(data: str | bytes) -> client_pb2.ServerFrame:
    frame = client_pb2.ServerFrame()
    if isinstance(data, str):
        json_format.Parse(data, frame)
    else:
        frame.ParseFromString(data)
    return frame


def request_id_of(frame: client_pb2.ServerFrame) -> str:
    """The request_id a server frame answers; "" for events (deliveries,
    receipt events, hello, pong, sync_required)."""
    kind = frame.WhichOneof("kind")
    if kind not in _REPLY_KINDS:
        return ""
    return str(getattr(frame, kind).request_id)
