from chatmesh.v1 import client_pb2 as _client_pb2
from chatmesh.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateGroupRequest(_message.Message):
    __slots__ = ("actor_user_id", "actor_device_id", "group")
    ACTOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    actor_user_id: str
    actor_device_id: str
    group: _client_pb2.CreateGroupFrame
    def __init__(self, actor_user_id: _Optional[str] = ..., actor_device_id: _Optional[str] = ..., group: _Optional[_Union[_client_pb2.CreateGroupFrame, _Mapping]] = ...) -> None: ...

class CreateGroupResponse(_message.Message):
    __slots__ = ("group", "event")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    group: _common_pb2.GroupInfo
    event: _common_pb2.Message
    def __init__(self, group: _Optional[_Union[_common_pb2.GroupInfo, _Mapping]] = ..., event: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...

class ChangeGroupRequest(_message.Message):
    __slots__ = ("actor_user_id", "actor_device_id", "change")
    ACTOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    actor_user_id: str
    actor_device_id: str
    change: _client_pb2.ChangeGroupFrame
    def __init__(self, actor_user_id: _Optional[str] = ..., actor_device_id: _Optional[str] = ..., change: _Optional[_Union[_client_pb2.ChangeGroupFrame, _Mapping]] = ...) -> None: ...

class ChangeGroupResponse(_message.Message):
    __slots__ = ("group", "event")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    group: _common_pb2.GroupInfo
    event: _common_pb2.Message
    def __init__(self, group: _Optional[_Union[_common_pb2.GroupInfo, _Mapping]] = ..., event: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...

class GetGroupRequest(_message.Message):
    __slots__ = ("requester_user_id", "conversation_id")
    REQUESTER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    requester_user_id: str
    conversation_id: str
    def __init__(self, requester_user_id: _Optional[str] = ..., conversation_id: _Optional[str] = ...) -> None: ...

class GetGroupResponse(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: _common_pb2.GroupInfo
    def __init__(self, group: _Optional[_Union[_common_pb2.GroupInfo, _Mapping]] = ...) -> None: ...
