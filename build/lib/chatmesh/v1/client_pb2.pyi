from chatmesh.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClientFrame(_message.Message):
    __slots__ = ("request_id", "send", "ping")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SEND_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    send: SendFrame
    ping: PingFrame
    def __init__(self, request_id: _Optional[str] = ..., send: _Optional[_Union[SendFrame, _Mapping]] = ..., ping: _Optional[_Union[PingFrame, _Mapping]] = ...) -> None: ...

class SendFrame(_message.Message):
    __slots__ = ("client_msg_id", "conversation_id", "to_user_id", "kind", "body")
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    TO_USER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    client_msg_id: str
    conversation_id: str
    to_user_id: str
    kind: _common_pb2.MessageKind
    body: bytes
    def __init__(self, client_msg_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., to_user_id: _Optional[str] = ..., kind: _Optional[_Union[_common_pb2.MessageKind, str]] = ..., body: _Optional[bytes] = ...) -> None: ...

class PingFrame(_message.Message):
    __slots__ = ("client_time_ms",)
    CLIENT_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    client_time_ms: int
    def __init__(self, client_time_ms: _Optional[int] = ...) -> None: ...

class ServerFrame(_message.Message):
    __slots__ = ("hello", "ack", "deliver", "error", "pong")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    DELIVER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PONG_FIELD_NUMBER: _ClassVar[int]
    hello: HelloFrame
    ack: AckFrame
    deliver: DeliverFrame
    error: ErrorFrame
    pong: PongFrame
    def __init__(self, hello: _Optional[_Union[HelloFrame, _Mapping]] = ..., ack: _Optional[_Union[AckFrame, _Mapping]] = ..., deliver: _Optional[_Union[DeliverFrame, _Mapping]] = ..., error: _Optional[_Union[ErrorFrame, _Mapping]] = ..., pong: _Optional[_Union[PongFrame, _Mapping]] = ...) -> None: ...

class HelloFrame(_message.Message):
    __slots__ = ("user_id", "device_id", "connection_id", "gateway_id", "max_frame_bytes")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAME_BYTES_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    connection_id: str
    gateway_id: str
    max_frame_bytes: int
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., gateway_id: _Optional[str] = ..., max_frame_bytes: _Optional[int] = ...) -> None: ...

class AckFrame(_message.Message):
    __slots__ = ("request_id", "client_msg_id", "message_id", "conversation_id", "created_at_ms")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    client_msg_id: str
    message_id: int
    conversation_id: str
    created_at_ms: int
    def __init__(self, request_id: _Optional[str] = ..., client_msg_id: _Optional[str] = ..., message_id: _Optional[int] = ..., conversation_id: _Optional[str] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class DeliverFrame(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: _common_pb2.Message
    def __init__(self, message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...

class ErrorFrame(_message.Message):
    __slots__ = ("code", "reason", "message", "request_id", "client_msg_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    code: _common_pb2.ErrorCode
    reason: str
    message: str
    request_id: str
    client_msg_id: str
    def __init__(self, code: _Optional[_Union[_common_pb2.ErrorCode, str]] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., request_id: _Optional[str] = ..., client_msg_id: _Optional[str] = ...) -> None: ...

class PongFrame(_message.Message):
    __slots__ = ("client_time_ms", "server_time_ms")
    CLIENT_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    client_time_ms: int
    server_time_ms: int
    def __init__(self, client_time_ms: _Optional[int] = ..., server_time_ms: _Optional[int] = ...) -> None: ...
