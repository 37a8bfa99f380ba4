from chatmesh.v1 import push_pb2 as _push_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PushPlatform(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUSH_PLATFORM_UNSPECIFIED: _ClassVar[PushPlatform]
    PUSH_PLATFORM_FCM: _ClassVar[PushPlatform]
    PUSH_PLATFORM_APNS: _ClassVar[PushPlatform]
    PUSH_PLATFORM_WEBPUSH: _ClassVar[PushPlatform]
PUSH_PLATFORM_UNSPECIFIED: PushPlatform
PUSH_PLATFORM_FCM: PushPlatform
PUSH_PLATFORM_APNS: PushPlatform
PUSH_PLATFORM_WEBPUSH: PushPlatform

class User(_message.Message):
    __slots__ = ("user_id", "display_name", "created_at_ms")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    display_name: str
    created_at_ms: int
    def __init__(self, user_id: _Optional[str] = ..., display_name: _Optional[str] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("user_id", "device_id", "push_platform", "push_token", "created_at_ms", "push", "show_previews")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    PUSH_PLATFORM_FIELD_NUMBER: _ClassVar[int]
    PUSH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PUSH_FIELD_NUMBER: _ClassVar[int]
    SHOW_PREVIEWS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    push_platform: PushPlatform
    push_token: str
    created_at_ms: int
    push: _push_pb2.PushCredential
    show_previews: bool
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., push_platform: _Optional[_Union[PushPlatform, str]] = ..., push_token: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., push: _Optional[_Union[_push_pb2.PushCredential, _Mapping]] = ..., show_previews: _Optional[bool] = ...) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("user_id", "display_name")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    display_name: str
    def __init__(self, user_id: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class CreateUserResponse(_message.Message):
    __slots__ = ("user", "created")
    USER_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    user: User
    created: bool
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class RegisterDeviceRequest(_message.Message):
    __slots__ = ("user_id", "device_id", "push_platform", "push_token", "push", "show_previews")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    PUSH_PLATFORM_FIELD_NUMBER: _ClassVar[int]
    PUSH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PUSH_FIELD_NUMBER: _ClassVar[int]
    SHOW_PREVIEWS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    push_platform: PushPlatform
    push_token: str
    push: _push_pb2.PushCredential
    show_previews: bool
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., push_platform: _Optional[_Union[PushPlatform, str]] = ..., push_token: _Optional[str] = ..., push: _Optional[_Union[_push_pb2.PushCredential, _Mapping]] = ..., show_previews: _Optional[bool] = ...) -> None: ...

class RegisterDeviceResponse(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: Device
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ...) -> None: ...

class ListDevicesRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class ListDevicesResponse(_message.Message):
    __slots__ = ("devices",)
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    def __init__(self, devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ...) -> None: ...

class RemoveDeviceRequest(_message.Message):
    __slots__ = ("user_id", "device_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ...) -> None: ...

class RemoveDeviceResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: bool
    def __init__(self, removed: _Optional[bool] = ...) -> None: ...

class SetConversationMuteRequest(_message.Message):
    __slots__ = ("user_id", "conversation_id", "muted", "until_ms")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    conversation_id: str
    muted: bool
    until_ms: int
    def __init__(self, user_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., muted: _Optional[bool] = ..., until_ms: _Optional[int] = ...) -> None: ...

class SetConversationMuteResponse(_message.Message):
    __slots__ = ("muted", "until_ms")
    MUTED_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    muted: bool
    until_ms: int
    def __init__(self, muted: _Optional[bool] = ..., until_ms: _Optional[int] = ...) -> None: ...
