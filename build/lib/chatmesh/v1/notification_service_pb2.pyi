from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class EnqueuePushRequest(_message.Message):
    __slots__ = ("user_ids", "conversation_id", "message_id", "sender_user_id")
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    conversation_id: str
    message_id: int
    sender_user_id: str
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ..., conversation_id: _Optional[str] = ..., message_id: _Optional[int] = ..., sender_user_id: _Optional[str] = ...) -> None: ...

class EnqueuePushResponse(_message.Message):
    __slots__ = ("enqueued",)
    ENQUEUED_FIELD_NUMBER: _ClassVar[int]
    enqueued: int
    def __init__(self, enqueued: _Optional[int] = ...) -> None: ...
