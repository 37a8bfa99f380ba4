from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ApnsEnvironment(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APNS_ENVIRONMENT_UNSPECIFIED: _ClassVar[ApnsEnvironment]
    APNS_ENVIRONMENT_PRODUCTION: _ClassVar[ApnsEnvironment]
    APNS_ENVIRONMENT_SANDBOX: _ClassVar[ApnsEnvironment]
APNS_ENVIRONMENT_UNSPECIFIED: ApnsEnvironment
APNS_ENVIRONMENT_PRODUCTION: ApnsEnvironment
APNS_ENVIRONMENT_SANDBOX: ApnsEnvironment

class FcmRegistration(_message.Message):
    __slots__ = ("registration_token",)
    REGISTRATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    registration_token: str
    def __init__(self, registration_token: _Optional[str] = ...) -> None: ...

class ApnsRegistration(_message.Message):
    __slots__ = ("device_token", "topic", "environment")
    DEVICE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    device_token: str
    topic: str
    environment: ApnsEnvironment
    def __init__(self, device_token: _Optional[str] = ..., topic: _Optional[str] = ..., environment: _Optional[_Union[ApnsEnvironment, str]] = ...) -> None: ...

class WebPushSubscription(_message.Message):
    __slots__ = ("endpoint", "p256dh", "auth")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    P256DH_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    p256dh: str
    auth: str
    def __init__(self, endpoint: _Optional[str] = ..., p256dh: _Optional[str] = ..., auth: _Optional[str] = ...) -> None: ...

class PushCredential(_message.Message):
    __slots__ = ("fcm", "apns", "web_push")
    FCM_FIELD_NUMBER: _ClassVar[int]
    APNS_FIELD_NUMBER: _ClassVar[int]
    WEB_PUSH_FIELD_NUMBER: _ClassVar[int]
    fcm: FcmRegistration
    apns: ApnsRegistration
    web_push: WebPushSubscription
    def __init__(self, fcm: _Optional[_Union[FcmRegistration, _Mapping]] = ..., apns: _Optional[_Union[ApnsRegistration, _Mapping]] = ..., web_push: _Optional[_Union[WebPushSubscription, _Mapping]] = ...) -> None: ...

class PushRecipient(_message.Message):
    __slots__ = ("user_id", "live_device_ids")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LIVE_DEVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    live_device_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[str] = ..., live_device_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class PushJob(_message.Message):
    __slots__ = ("conversation_id", "message_id", "sender_user_id", "recipients")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    message_id: int
    sender_user_id: str
    recipients: _containers.RepeatedCompositeFieldContainer[PushRecipient]
    def __init__(self, conversation_id: _Optional[str] = ..., message_id: _Optional[int] = ..., sender_user_id: _Optional[str] = ..., recipients: _Optional[_Iterable[_Union[PushRecipient, _Mapping]]] = ...) -> None: ...
