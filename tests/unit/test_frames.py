"""Every frame type survives both encodings unchanged."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmesh.errors import InvalidArgument
from chatmesh.frames import (
    Encoding,
    decode_client_frame,
    decode_server_frame,
    encode_client_frame,
    encode_server_frame,
    request_id_of,
)
from chatmesh.v1 import client_pb2, common_pb2

text = st.text(max_size=40)
ids = st.integers(min_value=0, max_value=2**63 - 1)
ms = st.integers(min_value=0, max_value=2**53)


@st.composite
def client_frames(draw: st.DrawFn) -> client_pb2.ClientFrame:
    frame = client_pb2.ClientFrame(request_id=draw(text))
    if draw(st.booleans()):
        send = client_pb2.SendFrame(
            client_msg_id=draw(text),
            kind=draw(
                st.sampled_from([common_pb2.MESSAGE_KIND_TEXT, common_pb2.MESSAGE_KIND_UNSPECIFIED])
            ),
            body=draw(st.binary(max_size=64)),
        )
        if draw(st.booleans()):
            send.conversation_id = draw(text)
        else:
            send.to_user_id = draw(text)
        frame.send.CopyFrom(send)
    else:
        frame.ping.client_time_ms = draw(ms)
    return frame


@st.composite
def server_frames(draw: st.DrawFn) -> client_pb2.ServerFrame:
    message = common_pb2.Message(
        message_id=draw(ids),
        conversation_id=draw(text),
        sender_user_id=draw(text),
        sender_device_id=draw(text),
        client_msg_id=draw(text),
        kind=common_pb2.MESSAGE_KIND_TEXT,
        body=draw(st.binary(max_size=64)),
        created_at_ms=draw(ms),
    )
    choice = draw(st.sampled_from(["hello", "ack", "deliver", "error", "pong"]))
    if choice == "hello":
        return client_pb2.ServerFrame(
            hello=client_pb2.HelloFrame(
                user_id=draw(text),
                device_id=draw(text),
                connection_id=draw(text),
                gateway_id=draw(text),
                max_frame_bytes=draw(st.integers(0, 2**32 - 1)),
            )
        )
    if choice == "ack":
        return client_pb2.ServerFrame(
            ack=client_pb2.AckFrame(
                request_id=draw(text),
                client_msg_id=draw(text),
                message_id=draw(ids),
                conversation_id=draw(text),
                created_at_ms=draw(ms),
            )
        )
    if choice == "deliver":
        return client_pb2.ServerFrame(deliver=client_pb2.DeliverFrame(message=message))
    if choice == "error":
        return client_pb2.ServerFrame(
            error=client_pb2.ErrorFrame(
                code=draw(st.sampled_from(list(common_pb2.ErrorCode.values()))),
                reason=draw(text),
                message=draw(text),
                request_id=draw(text),
                client_msg_id=draw(text),
            )
        )
    return client_pb2.ServerFrame(
        pong=client_pb2.PongFrame(client_time_ms=draw(ms), server_time_ms=draw(ms))
    )


@pytest.mark.parametrize("encoding", list(Encoding))
@given(frame=client_frames())
def test_client_frames_round_trip(encoding: Encoding, frame: client_pb2.ClientFrame) -> None:
    data = encode_client_frame(frame, encoding)
    assert isinstance(data, str if encoding is Encoding.JSON else bytes)
    assert decode_client_frame(data) == frame


@pytest.mark.parametrize("encoding", list(Encoding))
@given(frame=server_frames())
def test_server_frames_round_trip(encoding: Encoding, frame: client_pb2.ServerFrame) -> None:
    assert decode_server_frame(encode_server_frame(frame, encoding)) == frame


def test_json_uses_the_canonical_mapping() -> None:
    frame = client_pb2.ServerFrame(ack=client_pb2.AckFrame(client_msg_id="c1", message_id=2**62))
    decoded = json.loads(encode_server_frame(frame, Encoding.JSON))
    # 64-bit integers are strings in canonical JSON: JavaScript clients keep every digit.
    assert decoded == {"ack": {"clientMsgId": "c1", "messageId": str(2**62)}}


def test_snake_case_json_field_names_are_accepted() -> None:
    frame = decode_client_frame(
        '{"request_id": "r", "send": {"client_msg_id": "c", "to_user_id": "bob"}}'
    )
    assert frame.send.to_user_id == "bob"


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        "{}",
        '{"send": {"clientMsgId": 5, "toUserId": []}}',
        '{"unknownField": 1}',
        "[1, 2]",
        b"\xff\xff\xff\xff",
        b"",
    ],
)
def test_malformed_frames_raise_a_typed_error(data: str | bytes) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_client_frame(data)
    assert caught.value.reason == "MALFORMED_FRAME"


def test_every_answer_frame_is_matched_to_its_request_and_events_are_not() -> None:
    answers = {
        "upload": client_pb2.ServerFrame(upload=client_pb2.UploadFrame(request_id="r1")),
        "download_url": client_pb2.ServerFrame(
            download_url=client_pb2.DownloadUrlFrame(request_id="r1")
        ),
        "ack": client_pb2.ServerFrame(ack=client_pb2.AckFrame(request_id="r1")),
    }
    for kind, frame in answers.items():
        assert request_id_of(frame) == "r1", kind
    assert request_id_of(client_pb2.ServerFrame(pong=client_pb2.PongFrame())) == ""
    assert request_id_of(client_pb2.ServerFrame(deliver=client_pb2.DeliverFrame())) == ""
