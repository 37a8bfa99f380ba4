from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PushRecipient(_message.Message):
    __slots__ = ("user_id", "live_device_ids")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LIVE_DEVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    live_device_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[str] = ..., live_device_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class EnqueuePushRequest(_message.Message):
    __slots__ = ("recipients", "conversation_id", "message_id", "sender_user_id")
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    recipients: _containers.RepeatedCompositeFieldContainer[PushRecipient]
    conversation_id: str
    message_id: int
    sender_user_id: str
    def __init__(self, recipients: _Optional[_Iterable[_Union[PushRecipient, _Mapping]]] = ..., conversation_id: _Optional[str] = ..., message_id: _Optional[int] = ..., sender_user_id: _Optional[str] = ...) -> None: ...

class EnqueuePushResponse(_message.Message):
    __slots__ = ("enqueued",)
    ENQUEUED_FIELD_NUMBER: _ClassVar[int]
    enqueued: int
    def __init__(self, enqueued: _Optional[int] = ...) -> None: ...

class PushJob(_message.Message):
    __slots__ = ("user_id", "conversation_id", "message_id", "sender_user_id", "live_device_ids")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    LIVE_DEVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    conversation_id: str
    message_id: int
    sender_user_id: str
    live_device_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., message_id: _Optional[int] = ..., sender_user_id: _Optional[str] = ..., live_device_ids: _Optional[_Iterable[str]] = ...) -> None: ...
