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
