from chatmesh.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReportPresenceRequest(_message.Message):
    __slots__ = ("gateway_id", "connected_user_ids", "disconnected_user_ids", "online_user_ids", "full", "lease_seconds")
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    DISCONNECTED_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    ONLINE_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    gateway_id: str
    connected_user_ids: _containers.RepeatedScalarFieldContainer[str]
    disconnected_user_ids: _containers.RepeatedScalarFieldContainer[str]
    online_user_ids: _containers.RepeatedScalarFieldContainer[str]
    full: bool
    lease_seconds: int
    def __init__(self, gateway_id: _Optional[str] = ..., connected_user_ids: _Optional[_Iterable[str]] = ..., disconnected_user_ids: _Optional[_Iterable[str]] = ..., online_user_ids: _Optional[_Iterable[str]] = ..., full: _Optional[bool] = ..., lease_seconds: _Optional[int] = ...) -> None: ...

class ReportPresenceResponse(_message.Message):
    __slots__ = ("send_full",)
    SEND_FULL_FIELD_NUMBER: _ClassVar[int]
    send_full: bool
    def __init__(self, send_full: _Optional[bool] = ...) -> None: ...

class WatchPresenceRequest(_message.Message):
    __slots__ = ("watcher_user_id", "user_ids")
    WATCHER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    watcher_user_id: str
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, watcher_user_id: _Optional[str] = ..., user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchPresenceResponse(_message.Message):
    __slots__ = ("presences", "refused_user_ids")
    PRESENCES_FIELD_NUMBER: _ClassVar[int]
    REFUSED_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    presences: _containers.RepeatedCompositeFieldContainer[_common_pb2.Presence]
    refused_user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, presences: _Optional[_Iterable[_Union[_common_pb2.Presence, _Mapping]]] = ..., refused_user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SetPresenceVisibilityRequest(_message.Message):
    __slots__ = ("user_id", "visibility")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    visibility: _common_pb2.PresenceVisibility
    def __init__(self, user_id: _Optional[str] = ..., visibility: _Optional[_Union[_common_pb2.PresenceVisibility, str]] = ...) -> None: ...

class SetPresenceVisibilityResponse(_message.Message):
    __slots__ = ("visibility",)
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    visibility: _common_pb2.PresenceVisibility
    def __init__(self, visibility: _Optional[_Union[_common_pb2.PresenceVisibility, str]] = ...) -> None: ...

class GetPresenceRequest(_message.Message):
    __slots__ = ("user_ids",)
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetPresenceResponse(_message.Message):
    __slots__ = ("presences",)
    PRESENCES_FIELD_NUMBER: _ClassVar[int]
    presences: _containers.RepeatedCompositeFieldContainer[_common_pb2.Presence]
    def __init__(self, presences: _Optional[_Iterable[_Union[_common_pb2.Presence, _Mapping]]] = ...) -> None: ...
