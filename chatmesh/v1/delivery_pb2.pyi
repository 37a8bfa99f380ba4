from chatmesh.v1 import client_pb2 as _client_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GatewayDelivery(_message.Message):
    __slots__ = ("targets", "frame", "disconnect")
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    targets: _containers.RepeatedCompositeFieldContainer[DeliveryTarget]
    frame: _client_pb2.ServerFrame
    disconnect: _containers.RepeatedCompositeFieldContainer[DeliveryTarget]
    def __init__(self, targets: _Optional[_Iterable[_Union[DeliveryTarget, _Mapping]]] = ..., frame: _Optional[_Union[_client_pb2.ServerFrame, _Mapping]] = ..., disconnect: _Optional[_Iterable[_Union[DeliveryTarget, _Mapping]]] = ...) -> None: ...

class DeliveryTarget(_message.Message):
    __slots__ = ("user_id", "device_id", "connection_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    connection_id: str
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., connection_id: _Optional[str] = ...) -> None: ...

class DeviceRevocation(_message.Message):
    __slots__ = ("user_id", "device_id", "revoked_at_ms")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    revoked_at_ms: int
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., revoked_at_ms: _Optional[int] = ...) -> None: ...
