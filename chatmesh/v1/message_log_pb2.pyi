from chatmesh.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageLogRecord(_message.Message):
    __slots__ = ("conversation_id", "message_id", "kind")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    message_id: int
    kind: _common_pb2.MessageKind
    def __init__(self, conversation_id: _Optional[str] = ..., message_id: _Optional[int] = ..., kind: _Optional[_Union[_common_pb2.MessageKind, str]] = ...) -> None: ...
