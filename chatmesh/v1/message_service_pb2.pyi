from chatmesh.v1 import client_pb2 as _client_pb2
from chatmesh.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetReceiptsRequest(_message.Message):
    __slots__ = ("user_id", "conversation_id", "message_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    conversation_id: str
    message_id: int
    def __init__(self, user_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., message_id: _Optional[int] = ...) -> None: ...

class GetReceiptsResponse(_message.Message):
    __slots__ = ("counts", "members")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    counts: _common_pb2.ReceiptCounts
    members: _containers.RepeatedCompositeFieldContainer[_common_pb2.MemberReceipt]
    def __init__(self, counts: _Optional[_Union[_common_pb2.ReceiptCounts, _Mapping]] = ..., members: _Optional[_Iterable[_Union[_common_pb2.MemberReceipt, _Mapping]]] = ...) -> None: ...

class ConnectRequest(_message.Message):
    __slots__ = ("gateway_id", "frames")
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    gateway_id: str
    frames: _containers.RepeatedCompositeFieldContainer[InboundFrame]
    def __init__(self, gateway_id: _Optional[str] = ..., frames: _Optional[_Iterable[_Union[InboundFrame, _Mapping]]] = ...) -> None: ...

class InboundFrame(_message.Message):
    __slots__ = ("seq", "connection_id", "user_id", "device_id", "frame", "traceparent", "tracestate")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    connection_id: str
    user_id: str
    device_id: str
    frame: _client_pb2.ClientFrame
    traceparent: str
    tracestate: str
    def __init__(self, seq: _Optional[int] = ..., connection_id: _Optional[str] = ..., user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., frame: _Optional[_Union[_client_pb2.ClientFrame, _Mapping]] = ..., traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ...) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[OutboundFrame]
    def __init__(self, frames: _Optional[_Iterable[_Union[OutboundFrame, _Mapping]]] = ...) -> None: ...

class OutboundFrame(_message.Message):
    __slots__ = ("in_reply_to", "connection_id", "frame")
    IN_REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    in_reply_to: int
    connection_id: str
    frame: _client_pb2.ServerFrame
    def __init__(self, in_reply_to: _Optional[int] = ..., connection_id: _Optional[str] = ..., frame: _Optional[_Union[_client_pb2.ServerFrame, _Mapping]] = ...) -> None: ...

class SendMessageRequest(_message.Message):
    __slots__ = ("sender_user_id", "sender_device_id", "client_msg_id", "conversation_id", "to_user_id", "kind", "body", "media")
    SENDER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    TO_USER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    sender_user_id: str
    sender_device_id: str
    client_msg_id: str
    conversation_id: str
    to_user_id: str
    kind: _common_pb2.MessageKind
    body: bytes
    media: _common_pb2.MediaAttachment
    def __init__(self, sender_user_id: _Optional[str] = ..., sender_device_id: _Optional[str] = ..., client_msg_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., to_user_id: _Optional[str] = ..., kind: _Optional[_Union[_common_pb2.MessageKind, str]] = ..., body: _Optional[bytes] = ..., media: _Optional[_Union[_common_pb2.MediaAttachment, _Mapping]] = ...) -> None: ...

class SendMessageResponse(_message.Message):
    __slots__ = ("message", "duplicate")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    message: _common_pb2.Message
    duplicate: bool
    def __init__(self, message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class ListMessagesRequest(_message.Message):
    __slots__ = ("requester_user_id", "conversation_id", "page_size", "page_token")
    REQUESTER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    requester_user_id: str
    conversation_id: str
    page_size: int
    page_token: str
    def __init__(self, requester_user_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMessagesResponse(_message.Message):
    __slots__ = ("messages", "next_page_token")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    next_page_token: str
    def __init__(self, messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SyncRequest(_message.Message):
    __slots__ = ("user_id", "cursor")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    cursor: str
    def __init__(self, user_id: _Optional[str] = ..., cursor: _Optional[str] = ...) -> None: ...

class SyncResponse(_message.Message):
    __slots__ = ("conversations", "next_cursor", "gap", "window_floor_id")
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FLOOR_ID_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[_common_pb2.ConversationSummary]
    next_cursor: str
    gap: bool
    window_floor_id: int
    def __init__(self, conversations: _Optional[_Iterable[_Union[_common_pb2.ConversationSummary, _Mapping]]] = ..., next_cursor: _Optional[str] = ..., gap: _Optional[bool] = ..., window_floor_id: _Optional[int] = ...) -> None: ...

class SyncConversationRequest(_message.Message):
    __slots__ = ("user_id", "conversation_id", "cursor", "page_token", "page_size", "held_message_ids")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    HELD_MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    conversation_id: str
    cursor: str
    page_token: str
    page_size: int
    held_message_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, user_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., cursor: _Optional[str] = ..., page_token: _Optional[str] = ..., page_size: _Optional[int] = ..., held_message_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class SyncConversationResponse(_message.Message):
    __slots__ = ("messages", "next_page_token")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    next_page_token: str
    def __init__(self, messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class MarkReceiptRequest(_message.Message):
    __slots__ = ("user_id", "device_id", "conversation_id", "kind", "message_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    conversation_id: str
    kind: _common_pb2.ReceiptKind
    message_id: int
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., kind: _Optional[_Union[_common_pb2.ReceiptKind, str]] = ..., message_id: _Optional[int] = ...) -> None: ...

class MarkReceiptResponse(_message.Message):
    __slots__ = ("watermark", "advanced")
    WATERMARK_FIELD_NUMBER: _ClassVar[int]
    ADVANCED_FIELD_NUMBER: _ClassVar[int]
    watermark: _common_pb2.Watermark
    advanced: bool
    def __init__(self, watermark: _Optional[_Union[_common_pb2.Watermark, _Mapping]] = ..., advanced: _Optional[bool] = ...) -> None: ...

class ListConversationsRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListConversationsResponse(_message.Message):
    __slots__ = ("conversations", "next_page_token")
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[_common_pb2.ConversationSummary]
    next_page_token: str
    def __init__(self, conversations: _Optional[_Iterable[_Union[_common_pb2.ConversationSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
