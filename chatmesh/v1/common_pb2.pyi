from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_KIND_UNSPECIFIED: _ClassVar[MessageKind]
    MESSAGE_KIND_TEXT: _ClassVar[MessageKind]
    MESSAGE_KIND_SYSTEM: _ClassVar[MessageKind]
    MESSAGE_KIND_IMAGE: _ClassVar[MessageKind]
    MESSAGE_KIND_VIDEO: _ClassVar[MessageKind]
    MESSAGE_KIND_VOICE: _ClassVar[MessageKind]
    MESSAGE_KIND_DOCUMENT: _ClassVar[MessageKind]

class MemberRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMBER_ROLE_UNSPECIFIED: _ClassVar[MemberRole]
    MEMBER_ROLE_MEMBER: _ClassVar[MemberRole]
    MEMBER_ROLE_ADMIN: _ClassVar[MemberRole]

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CODE_UNSPECIFIED: _ClassVar[ErrorCode]
    ERROR_CODE_INVALID_ARGUMENT: _ClassVar[ErrorCode]
    ERROR_CODE_PERMISSION_DENIED: _ClassVar[ErrorCode]
    ERROR_CODE_NOT_FOUND: _ClassVar[ErrorCode]
    ERROR_CODE_RESOURCE_EXHAUSTED: _ClassVar[ErrorCode]
    ERROR_CODE_UNAVAILABLE: _ClassVar[ErrorCode]
    ERROR_CODE_INTERNAL: _ClassVar[ErrorCode]
    ERROR_CODE_UNAUTHENTICATED: _ClassVar[ErrorCode]
    ERROR_CODE_FAILED_PRECONDITION: _ClassVar[ErrorCode]
    ERROR_CODE_ALREADY_EXISTS: _ClassVar[ErrorCode]

class ConversationKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONVERSATION_KIND_UNSPECIFIED: _ClassVar[ConversationKind]
    CONVERSATION_KIND_DIRECT: _ClassVar[ConversationKind]
    CONVERSATION_KIND_GROUP: _ClassVar[ConversationKind]
    CONVERSATION_KIND_CHANNEL: _ClassVar[ConversationKind]

class ReceiptKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECEIPT_KIND_UNSPECIFIED: _ClassVar[ReceiptKind]
    RECEIPT_KIND_DELIVERED: _ClassVar[ReceiptKind]
    RECEIPT_KIND_READ: _ClassVar[ReceiptKind]

class PresenceStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRESENCE_STATUS_UNSPECIFIED: _ClassVar[PresenceStatus]
    PRESENCE_STATUS_ONLINE: _ClassVar[PresenceStatus]
    PRESENCE_STATUS_OFFLINE: _ClassVar[PresenceStatus]

class PresenceVisibility(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRESENCE_VISIBILITY_UNSPECIFIED: _ClassVar[PresenceVisibility]
    PRESENCE_VISIBILITY_CONVERSATIONS: _ClassVar[PresenceVisibility]
    PRESENCE_VISIBILITY_NOBODY: _ClassVar[PresenceVisibility]
MESSAGE_KIND_UNSPECIFIED: MessageKind
MESSAGE_KIND_TEXT: MessageKind
MESSAGE_KIND_SYSTEM: MessageKind
MESSAGE_KIND_IMAGE: MessageKind
MESSAGE_KIND_VIDEO: MessageKind
MESSAGE_KIND_VOICE: MessageKind
MESSAGE_KIND_DOCUMENT: MessageKind
MEMBER_ROLE_UNSPECIFIED: MemberRole
MEMBER_ROLE_MEMBER: MemberRole
MEMBER_ROLE_ADMIN: MemberRole
ERROR_CODE_UNSPECIFIED: ErrorCode
ERROR_CODE_INVALID_ARGUMENT: ErrorCode
ERROR_CODE_PERMISSION_DENIED: ErrorCode
ERROR_CODE_NOT_FOUND: ErrorCode
ERROR_CODE_RESOURCE_EXHAUSTED: ErrorCode
ERROR_CODE_UNAVAILABLE: ErrorCode
ERROR_CODE_INTERNAL: ErrorCode
ERROR_CODE_UNAUTHENTICATED: ErrorCode
ERROR_CODE_FAILED_PRECONDITION: ErrorCode
ERROR_CODE_ALREADY_EXISTS: ErrorCode
CONVERSATION_KIND_UNSPECIFIED: ConversationKind
CONVERSATION_KIND_DIRECT: ConversationKind
CONVERSATION_KIND_GROUP: ConversationKind
CONVERSATION_KIND_CHANNEL: ConversationKind
RECEIPT_KIND_UNSPECIFIED: ReceiptKind
RECEIPT_KIND_DELIVERED: ReceiptKind
RECEIPT_KIND_READ: ReceiptKind
PRESENCE_STATUS_UNSPECIFIED: PresenceStatus
PRESENCE_STATUS_ONLINE: PresenceStatus
PRESENCE_STATUS_OFFLINE: PresenceStatus
PRESENCE_VISIBILITY_UNSPECIFIED: PresenceVisibility
PRESENCE_VISIBILITY_CONVERSATIONS: PresenceVisibility
PRESENCE_VISIBILITY_NOBODY: PresenceVisibility

class MediaAttachment(_message.Message):
    __slots__ = ("media_id", "content_type", "size_bytes", "sha256", "width", "height", "duration_ms", "thumbnail", "blurhash", "file_name")
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_FIELD_NUMBER: _ClassVar[int]
    BLURHASH_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    media_id: str
    content_type: str
    size_bytes: int
    sha256: bytes
    width: int
    height: int
    duration_ms: int
    thumbnail: bytes
    blurhash: str
    file_name: str
    def __init__(self, media_id: _Optional[str] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., duration_ms: _Optional[int] = ..., thumbnail: _Optional[bytes] = ..., blurhash: _Optional[str] = ..., file_name: _Optional[str] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("message_id", "conversation_id", "sender_user_id", "sender_device_id", "client_msg_id", "kind", "body", "created_at_ms", "system", "media")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    message_id: int
    conversation_id: str
    sender_user_id: str
    sender_device_id: str
    client_msg_id: str
    kind: MessageKind
    body: bytes
    created_at_ms: int
    system: SystemEvent
    media: MediaAttachment
    def __init__(self, message_id: _Optional[int] = ..., conversation_id: _Optional[str] = ..., sender_user_id: _Optional[str] = ..., sender_device_id: _Optional[str] = ..., client_msg_id: _Optional[str] = ..., kind: _Optional[_Union[MessageKind, str]] = ..., body: _Optional[bytes] = ..., created_at_ms: _Optional[int] = ..., system: _Optional[_Union[SystemEvent, _Mapping]] = ..., media: _Optional[_Union[MediaAttachment, _Mapping]] = ...) -> None: ...

class GroupMember(_message.Message):
    __slots__ = ("user_id", "role", "joined_message_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    JOINED_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    role: MemberRole
    joined_message_id: int
    def __init__(self, user_id: _Optional[str] = ..., role: _Optional[_Union[MemberRole, str]] = ..., joined_message_id: _Optional[int] = ...) -> None: ...

class GroupInfo(_message.Message):
    __slots__ = ("conversation_id", "title", "created_by_user_id", "members", "max_members", "kind")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_USER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    MAX_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    title: str
    created_by_user_id: str
    members: _containers.RepeatedCompositeFieldContainer[GroupMember]
    max_members: int
    kind: ConversationKind
    def __init__(self, conversation_id: _Optional[str] = ..., title: _Optional[str] = ..., created_by_user_id: _Optional[str] = ..., members: _Optional[_Iterable[_Union[GroupMember, _Mapping]]] = ..., max_members: _Optional[int] = ..., kind: _Optional[_Union[ConversationKind, str]] = ...) -> None: ...

class SystemEvent(_message.Message):
    __slots__ = ("actor_user_id", "group_created", "members_added", "member_removed", "member_left", "title_changed", "role_changed")
    ACTOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_CREATED_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_ADDED_FIELD_NUMBER: _ClassVar[int]
    MEMBER_REMOVED_FIELD_NUMBER: _ClassVar[int]
    MEMBER_LEFT_FIELD_NUMBER: _ClassVar[int]
    TITLE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    ROLE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    actor_user_id: str
    group_created: GroupCreated
    members_added: MembersAdded
    member_removed: MemberRemoved
    member_left: MemberLeft
    title_changed: TitleChanged
    role_changed: RoleChanged
    def __init__(self, actor_user_id: _Optional[str] = ..., group_created: _Optional[_Union[GroupCreated, _Mapping]] = ..., members_added: _Optional[_Union[MembersAdded, _Mapping]] = ..., member_removed: _Optional[_Union[MemberRemoved, _Mapping]] = ..., member_left: _Optional[_Union[MemberLeft, _Mapping]] = ..., title_changed: _Optional[_Union[TitleChanged, _Mapping]] = ..., role_changed: _Optional[_Union[RoleChanged, _Mapping]] = ...) -> None: ...

class GroupCreated(_message.Message):
    __slots__ = ("title", "member_user_ids", "kind")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    title: str
    member_user_ids: _containers.RepeatedScalarFieldContainer[str]
    kind: ConversationKind
    def __init__(self, title: _Optional[str] = ..., member_user_ids: _Optional[_Iterable[str]] = ..., kind: _Optional[_Union[ConversationKind, str]] = ...) -> None: ...

class MembersAdded(_message.Message):
    __slots__ = ("user_ids",)
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class MemberRemoved(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class MemberLeft(_message.Message):
    __slots__ = ("promoted_user_ids",)
    PROMOTED_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    promoted_user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, promoted_user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class TitleChanged(_message.Message):
    __slots__ = ("title",)
    TITLE_FIELD_NUMBER: _ClassVar[int]
    title: str
    def __init__(self, title: _Optional[str] = ...) -> None: ...

class RoleChanged(_message.Message):
    __slots__ = ("user_id", "role")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    role: MemberRole
    def __init__(self, user_id: _Optional[str] = ..., role: _Optional[_Union[MemberRole, str]] = ...) -> None: ...

class Watermark(_message.Message):
    __slots__ = ("conversation_id", "user_id", "delivered_message_id", "read_message_id")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    READ_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    user_id: str
    delivered_message_id: int
    read_message_id: int
    def __init__(self, conversation_id: _Optional[str] = ..., user_id: _Optional[str] = ..., delivered_message_id: _Optional[int] = ..., read_message_id: _Optional[int] = ...) -> None: ...

class ConversationSummary(_message.Message):
    __slots__ = ("conversation_id", "kind", "title", "member_user_ids", "last_message", "unread_count", "member_watermarks", "members", "left", "last_message_receipts")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    UNREAD_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEMBER_WATERMARKS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    kind: ConversationKind
    title: str
    member_user_ids: _containers.RepeatedScalarFieldContainer[str]
    last_message: Message
    unread_count: int
    member_watermarks: _containers.RepeatedCompositeFieldContainer[Watermark]
    members: _containers.RepeatedCompositeFieldContainer[GroupMember]
    left: bool
    last_message_receipts: ReceiptCounts
    def __init__(self, conversation_id: _Optional[str] = ..., kind: _Optional[_Union[ConversationKind, str]] = ..., title: _Optional[str] = ..., member_user_ids: _Optional[_Iterable[str]] = ..., last_message: _Optional[_Union[Message, _Mapping]] = ..., unread_count: _Optional[int] = ..., member_watermarks: _Optional[_Iterable[_Union[Watermark, _Mapping]]] = ..., members: _Optional[_Iterable[_Union[GroupMember, _Mapping]]] = ..., left: _Optional[bool] = ..., last_message_receipts: _Optional[_Union[ReceiptCounts, _Mapping]] = ...) -> None: ...

class ReceiptCounts(_message.Message):
    __slots__ = ("message_id", "recipients", "delivered", "read")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    message_id: int
    recipients: int
    delivered: int
    read: int
    def __init__(self, message_id: _Optional[int] = ..., recipients: _Optional[int] = ..., delivered: _Optional[int] = ..., read: _Optional[int] = ...) -> None: ...

class MemberReceipt(_message.Message):
    __slots__ = ("user_id", "delivered", "read")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    delivered: bool
    read: bool
    def __init__(self, user_id: _Optional[str] = ..., delivered: _Optional[bool] = ..., read: _Optional[bool] = ...) -> None: ...

class Presence(_message.Message):
    __slots__ = ("user_id", "status", "last_seen_ms", "changed_at_ms")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_MS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    status: PresenceStatus
    last_seen_ms: int
    changed_at_ms: int
    def __init__(self, user_id: _Optional[str] = ..., status: _Optional[_Union[PresenceStatus, str]] = ..., last_seen_ms: _Optional[int] = ..., changed_at_ms: _Optional[int] = ...) -> None: ...
