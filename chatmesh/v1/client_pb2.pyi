from chatmesh.v1 import common_pb2 as _common_pb2
from chatmesh.v1 import push_pb2 as _push_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UploadState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UPLOAD_STATE_UNSPECIFIED: _ClassVar[UploadState]
    UPLOAD_STATE_PENDING: _ClassVar[UploadState]
    UPLOAD_STATE_COMPLETE: _ClassVar[UploadState]
UPLOAD_STATE_UNSPECIFIED: UploadState
UPLOAD_STATE_PENDING: UploadState
UPLOAD_STATE_COMPLETE: UploadState

class ClientFrame(_message.Message):
    __slots__ = ("request_id", "send", "ping", "sync", "sync_conversation", "mark", "history", "list_conversations", "create_group", "change_group", "get_group", "get_receipts", "register_push", "mute_conversation", "watch_presence", "unwatch_presence", "typing", "set_presence_visibility", "create_upload", "complete_upload", "get_download_url")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SEND_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    SYNC_CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    MARK_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    LIST_CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    CREATE_GROUP_FIELD_NUMBER: _ClassVar[int]
    CHANGE_GROUP_FIELD_NUMBER: _ClassVar[int]
    GET_GROUP_FIELD_NUMBER: _ClassVar[int]
    GET_RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    REGISTER_PUSH_FIELD_NUMBER: _ClassVar[int]
    MUTE_CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    WATCH_PRESENCE_FIELD_NUMBER: _ClassVar[int]
    UNWATCH_PRESENCE_FIELD_NUMBER: _ClassVar[int]
    TYPING_FIELD_NUMBER: _ClassVar[int]
    SET_PRESENCE_VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    CREATE_UPLOAD_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_UPLOAD_FIELD_NUMBER: _ClassVar[int]
    GET_DOWNLOAD_URL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    send: SendFrame
    ping: PingFrame
    sync: SyncFrame
    sync_conversation: SyncConversationFrame
    mark: MarkFrame
    history: HistoryFrame
    list_conversations: ListConversationsFrame
    create_group: CreateGroupFrame
    change_group: ChangeGroupFrame
    get_group: GetGroupFrame
    get_receipts: GetReceiptsFrame
    register_push: RegisterPushFrame
    mute_conversation: MuteConversationFrame
    watch_presence: WatchPresenceFrame
    unwatch_presence: UnwatchPresenceFrame
    typing: TypingFrame
    set_presence_visibility: SetPresenceVisibilityFrame
    create_upload: CreateUploadFrame
    complete_upload: CompleteUploadFrame
    get_download_url: GetDownloadUrlFrame
    def __init__(self, request_id: _Optional[str] = ..., send: _Optional[_Union[SendFrame, _Mapping]] = ..., ping: _Optional[_Union[PingFrame, _Mapping]] = ..., sync: _Optional[_Union[SyncFrame, _Mapping]] = ..., sync_conversation: _Optional[_Union[SyncConversationFrame, _Mapping]] = ..., mark: _Optional[_Union[MarkFrame, _Mapping]] = ..., history: _Optional[_Union[HistoryFrame, _Mapping]] = ..., list_conversations: _Optional[_Union[ListConversationsFrame, _Mapping]] = ..., create_group: _Optional[_Union[CreateGroupFrame, _Mapping]] = ..., change_group: _Optional[_Union[ChangeGroupFrame, _Mapping]] = ..., get_group: _Optional[_Union[GetGroupFrame, _Mapping]] = ..., get_receipts: _Optional[_Union[GetReceiptsFrame, _Mapping]] = ..., register_push: _Optional[_Union[RegisterPushFrame, _Mapping]] = ..., mute_conversation: _Optional[_Union[MuteConversationFrame, _Mapping]] = ..., watch_presence: _Optional[_Union[WatchPresenceFrame, _Mapping]] = ..., unwatch_presence: _Optional[_Union[UnwatchPresenceFrame, _Mapping]] = ..., typing: _Optional[_Union[TypingFrame, _Mapping]] = ..., set_presence_visibility: _Optional[_Union[SetPresenceVisibilityFrame, _Mapping]] = ..., create_upload: _Optional[_Union[CreateUploadFrame, _Mapping]] = ..., complete_upload: _Optional[_Union[CompleteUploadFrame, _Mapping]] = ..., get_download_url: _Optional[_Union[GetDownloadUrlFrame, _Mapping]] = ...) -> None: ...

class WatchPresenceFrame(_message.Message):
    __slots__ = ("user_ids",)
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class UnwatchPresenceFrame(_message.Message):
    __slots__ = ("user_ids",)
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class TypingFrame(_message.Message):
    __slots__ = ("conversation_id", "typing")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    TYPING_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    typing: bool
    def __init__(self, conversation_id: _Optional[str] = ..., typing: _Optional[bool] = ...) -> None: ...

class SetPresenceVisibilityFrame(_message.Message):
    __slots__ = ("visibility",)
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    visibility: _common_pb2.PresenceVisibility
    def __init__(self, visibility: _Optional[_Union[_common_pb2.PresenceVisibility, str]] = ...) -> None: ...

class RegisterPushFrame(_message.Message):
    __slots__ = ("push", "show_previews")
    PUSH_FIELD_NUMBER: _ClassVar[int]
    SHOW_PREVIEWS_FIELD_NUMBER: _ClassVar[int]
    push: _push_pb2.PushCredential
    show_previews: bool
    def __init__(self, push: _Optional[_Union[_push_pb2.PushCredential, _Mapping]] = ..., show_previews: _Optional[bool] = ...) -> None: ...

class MuteConversationFrame(_message.Message):
    __slots__ = ("conversation_id", "muted", "until_ms")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    muted: bool
    until_ms: int
    def __init__(self, conversation_id: _Optional[str] = ..., muted: _Optional[bool] = ..., until_ms: _Optional[int] = ...) -> None: ...

class CreateGroupFrame(_message.Message):
    __slots__ = ("client_group_id", "title", "member_user_ids", "kind")
    CLIENT_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    client_group_id: str
    title: str
    member_user_ids: _containers.RepeatedScalarFieldContainer[str]
    kind: _common_pb2.ConversationKind
    def __init__(self, client_group_id: _Optional[str] = ..., title: _Optional[str] = ..., member_user_ids: _Optional[_Iterable[str]] = ..., kind: _Optional[_Union[_common_pb2.ConversationKind, str]] = ...) -> None: ...

class ChangeGroupFrame(_message.Message):
    __slots__ = ("conversation_id", "add_members", "remove_member", "leave", "rename", "set_role")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    ADD_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_MEMBER_FIELD_NUMBER: _ClassVar[int]
    LEAVE_FIELD_NUMBER: _ClassVar[int]
    RENAME_FIELD_NUMBER: _ClassVar[int]
    SET_ROLE_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    add_members: AddMembersChange
    remove_member: RemoveMemberChange
    leave: LeaveGroupChange
    rename: RenameGroupChange
    set_role: SetRoleChange
    def __init__(self, conversation_id: _Optional[str] = ..., add_members: _Optional[_Union[AddMembersChange, _Mapping]] = ..., remove_member: _Optional[_Union[RemoveMemberChange, _Mapping]] = ..., leave: _Optional[_Union[LeaveGroupChange, _Mapping]] = ..., rename: _Optional[_Union[RenameGroupChange, _Mapping]] = ..., set_role: _Optional[_Union[SetRoleChange, _Mapping]] = ...) -> None: ...

class AddMembersChange(_message.Message):
    __slots__ = ("user_ids",)
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveMemberChange(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class LeaveGroupChange(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RenameGroupChange(_message.Message):
    __slots__ = ("title",)
    TITLE_FIELD_NUMBER: _ClassVar[int]
    title: str
    def __init__(self, title: _Optional[str] = ...) -> None: ...

class SetRoleChange(_message.Message):
    __slots__ = ("user_id", "role")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    role: _common_pb2.MemberRole
    def __init__(self, user_id: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.MemberRole, str]] = ...) -> None: ...

class GetReceiptsFrame(_message.Message):
    __slots__ = ("conversation_id", "message_id")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    message_id: int
    def __init__(self, conversation_id: _Optional[str] = ..., message_id: _Optional[int] = ...) -> None: ...

class GetGroupFrame(_message.Message):
    __slots__ = ("conversation_id",)
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    def __init__(self, conversation_id: _Optional[str] = ...) -> None: ...

class SyncFrame(_message.Message):
    __slots__ = ("cursor",)
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    def __init__(self, cursor: _Optional[str] = ...) -> None: ...

class SyncConversationFrame(_message.Message):
    __slots__ = ("conversation_id", "cursor", "page_token", "page_size", "held_message_ids")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    HELD_MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    cursor: str
    page_token: str
    page_size: int
    held_message_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, conversation_id: _Optional[str] = ..., cursor: _Optional[str] = ..., page_token: _Optional[str] = ..., page_size: _Optional[int] = ..., held_message_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class MarkFrame(_message.Message):
    __slots__ = ("conversation_id", "kind", "message_id")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    kind: _common_pb2.ReceiptKind
    message_id: int
    def __init__(self, conversation_id: _Optional[str] = ..., kind: _Optional[_Union[_common_pb2.ReceiptKind, str]] = ..., message_id: _Optional[int] = ...) -> None: ...

class HistoryFrame(_message.Message):
    __slots__ = ("conversation_id", "page_size", "page_token")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    page_size: int
    page_token: str
    def __init__(self, conversation_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListConversationsFrame(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class SendFrame(_message.Message):
    __slots__ = ("client_msg_id", "conversation_id", "to_user_id", "kind", "body", "media")
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    TO_USER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    client_msg_id: str
    conversation_id: str
    to_user_id: str
    kind: _common_pb2.MessageKind
    body: bytes
    media: _common_pb2.MediaAttachment
    def __init__(self, client_msg_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., to_user_id: _Optional[str] = ..., kind: _Optional[_Union[_common_pb2.MessageKind, str]] = ..., body: _Optional[bytes] = ..., media: _Optional[_Union[_common_pb2.MediaAttachment, _Mapping]] = ...) -> None: ...

class PingFrame(_message.Message):
    __slots__ = ("client_time_ms",)
    CLIENT_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    client_time_ms: int
    def __init__(self, client_time_ms: _Optional[int] = ...) -> None: ...

class ServerFrame(_message.Message):
    __slots__ = ("hello", "ack", "deliver", "error", "pong", "sync_summary", "sync_page", "watermark", "history_page", "conversation_list", "sync_required", "group", "receipt_counts", "receipt_details", "channel_activity", "push_registered", "conversation_muted", "presence", "presence_visibility", "typing_activity", "upload", "download_url")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    DELIVER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PONG_FIELD_NUMBER: _ClassVar[int]
    SYNC_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SYNC_PAGE_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_FIELD_NUMBER: _ClassVar[int]
    HISTORY_PAGE_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_LIST_FIELD_NUMBER: _ClassVar[int]
    SYNC_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_DETAILS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    PUSH_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_MUTED_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    TYPING_ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_URL_FIELD_NUMBER: _ClassVar[int]
    hello: HelloFrame
    ack: AckFrame
    deliver: DeliverFrame
    error: ErrorFrame
    pong: PongFrame
    sync_summary: SyncSummaryFrame
    sync_page: SyncPageFrame
    watermark: WatermarkFrame
    history_page: HistoryPageFrame
    conversation_list: ConversationListFrame
    sync_required: SyncRequiredFrame
    group: GroupFrame
    receipt_counts: ReceiptCountsFrame
    receipt_details: ReceiptDetailsFrame
    channel_activity: ChannelActivityFrame
    push_registered: PushRegisteredFrame
    conversation_muted: ConversationMutedFrame
    presence: PresenceFrame
    presence_visibility: PresenceVisibilityFrame
    typing_activity: TypingActivityFrame
    upload: UploadFrame
    download_url: DownloadUrlFrame
    def __init__(self, hello: _Optional[_Union[HelloFrame, _Mapping]] = ..., ack: _Optional[_Union[AckFrame, _Mapping]] = ..., deliver: _Optional[_Union[DeliverFrame, _Mapping]] = ..., error: _Optional[_Union[ErrorFrame, _Mapping]] = ..., pong: _Optional[_Union[PongFrame, _Mapping]] = ..., sync_summary: _Optional[_Union[SyncSummaryFrame, _Mapping]] = ..., sync_page: _Optional[_Union[SyncPageFrame, _Mapping]] = ..., watermark: _Optional[_Union[WatermarkFrame, _Mapping]] = ..., history_page: _Optional[_Union[HistoryPageFrame, _Mapping]] = ..., conversation_list: _Optional[_Union[ConversationListFrame, _Mapping]] = ..., sync_required: _Optional[_Union[SyncRequiredFrame, _Mapping]] = ..., group: _Optional[_Union[GroupFrame, _Mapping]] = ..., receipt_counts: _Optional[_Union[ReceiptCountsFrame, _Mapping]] = ..., receipt_details: _Optional[_Union[ReceiptDetailsFrame, _Mapping]] = ..., channel_activity: _Optional[_Union[ChannelActivityFrame, _Mapping]] = ..., push_registered: _Optional[_Union[PushRegisteredFrame, _Mapping]] = ..., conversation_muted: _Optional[_Union[ConversationMutedFrame, _Mapping]] = ..., presence: _Optional[_Union[PresenceFrame, _Mapping]] = ..., presence_visibility: _Optional[_Union[PresenceVisibilityFrame, _Mapping]] = ..., typing_activity: _Optional[_Union[TypingActivityFrame, _Mapping]] = ..., upload: _Optional[_Union[UploadFrame, _Mapping]] = ..., download_url: _Optional[_Union[DownloadUrlFrame, _Mapping]] = ...) -> None: ...

class CreateUploadFrame(_message.Message):
    __slots__ = ("kind", "content_type", "size_bytes", "sha256")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    kind: _common_pb2.MessageKind
    content_type: str
    size_bytes: int
    sha256: bytes
    def __init__(self, kind: _Optional[_Union[_common_pb2.MessageKind, str]] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[bytes] = ...) -> None: ...

class CompleteUploadFrame(_message.Message):
    __slots__ = ("media_id",)
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    media_id: str
    def __init__(self, media_id: _Optional[str] = ...) -> None: ...

class UploadFrame(_message.Message):
    __slots__ = ("request_id", "media_id", "state", "upload_url", "upload_headers", "expires_at_ms", "media")
    class UploadHeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_URL_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_HEADERS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    media_id: str
    state: UploadState
    upload_url: str
    upload_headers: _containers.ScalarMap[str, str]
    expires_at_ms: int
    media: _common_pb2.MediaAttachment
    def __init__(self, request_id: _Optional[str] = ..., media_id: _Optional[str] = ..., state: _Optional[_Union[UploadState, str]] = ..., upload_url: _Optional[str] = ..., upload_headers: _Optional[_Mapping[str, str]] = ..., expires_at_ms: _Optional[int] = ..., media: _Optional[_Union[_common_pb2.MediaAttachment, _Mapping]] = ...) -> None: ...

class GetDownloadUrlFrame(_message.Message):
    __slots__ = ("media_id", "conversation_id")
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    media_id: str
    conversation_id: str
    def __init__(self, media_id: _Optional[str] = ..., conversation_id: _Optional[str] = ...) -> None: ...

class DownloadUrlFrame(_message.Message):
    __slots__ = ("request_id", "media_id", "url", "expires_at_ms", "media")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    media_id: str
    url: str
    expires_at_ms: int
    media: _common_pb2.MediaAttachment
    def __init__(self, request_id: _Optional[str] = ..., media_id: _Optional[str] = ..., url: _Optional[str] = ..., expires_at_ms: _Optional[int] = ..., media: _Optional[_Union[_common_pb2.MediaAttachment, _Mapping]] = ...) -> None: ...

class PresenceFrame(_message.Message):
    __slots__ = ("request_id", "presences", "refused_user_ids", "watching")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PRESENCES_FIELD_NUMBER: _ClassVar[int]
    REFUSED_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    WATCHING_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    presences: _containers.RepeatedCompositeFieldContainer[_common_pb2.Presence]
    refused_user_ids: _containers.RepeatedScalarFieldContainer[str]
    watching: int
    def __init__(self, request_id: _Optional[str] = ..., presences: _Optional[_Iterable[_Union[_common_pb2.Presence, _Mapping]]] = ..., refused_user_ids: _Optional[_Iterable[str]] = ..., watching: _Optional[int] = ...) -> None: ...

class PresenceVisibilityFrame(_message.Message):
    __slots__ = ("request_id", "visibility")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    visibility: _common_pb2.PresenceVisibility
    def __init__(self, request_id: _Optional[str] = ..., visibility: _Optional[_Union[_common_pb2.PresenceVisibility, str]] = ...) -> None: ...

class TypingActivityFrame(_message.Message):
    __slots__ = ("conversation_id", "typing_user_ids", "stopped_user_ids", "ttl_ms")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    TYPING_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    STOPPED_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    typing_user_ids: _containers.RepeatedScalarFieldContainer[str]
    stopped_user_ids: _containers.RepeatedScalarFieldContainer[str]
    ttl_ms: int
    def __init__(self, conversation_id: _Optional[str] = ..., typing_user_ids: _Optional[_Iterable[str]] = ..., stopped_user_ids: _Optional[_Iterable[str]] = ..., ttl_ms: _Optional[int] = ...) -> None: ...

class PushRegisteredFrame(_message.Message):
    __slots__ = ("request_id", "has_push", "show_previews")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    HAS_PUSH_FIELD_NUMBER: _ClassVar[int]
    SHOW_PREVIEWS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    has_push: bool
    show_previews: bool
    def __init__(self, request_id: _Optional[str] = ..., has_push: _Optional[bool] = ..., show_previews: _Optional[bool] = ...) -> None: ...

class ConversationMutedFrame(_message.Message):
    __slots__ = ("request_id", "conversation_id", "muted", "until_ms")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    conversation_id: str
    muted: bool
    until_ms: int
    def __init__(self, request_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., muted: _Optional[bool] = ..., until_ms: _Optional[int] = ...) -> None: ...

class SyncSummaryFrame(_message.Message):
    __slots__ = ("request_id", "conversations", "next_cursor", "gap", "window_floor_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FLOOR_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    conversations: _containers.RepeatedCompositeFieldContainer[_common_pb2.ConversationSummary]
    next_cursor: str
    gap: bool
    window_floor_id: int
    def __init__(self, request_id: _Optional[str] = ..., conversations: _Optional[_Iterable[_Union[_common_pb2.ConversationSummary, _Mapping]]] = ..., next_cursor: _Optional[str] = ..., gap: _Optional[bool] = ..., window_floor_id: _Optional[int] = ...) -> None: ...

class SyncPageFrame(_message.Message):
    __slots__ = ("request_id", "conversation_id", "messages", "next_page_token")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    conversation_id: str
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    next_page_token: str
    def __init__(self, request_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatermarkFrame(_message.Message):
    __slots__ = ("request_id", "watermark")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    watermark: _common_pb2.Watermark
    def __init__(self, request_id: _Optional[str] = ..., watermark: _Optional[_Union[_common_pb2.Watermark, _Mapping]] = ...) -> None: ...

class HistoryPageFrame(_message.Message):
    __slots__ = ("request_id", "conversation_id", "messages", "next_page_token")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    conversation_id: str
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.Message]
    next_page_token: str
    def __init__(self, request_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.Message, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ConversationListFrame(_message.Message):
    __slots__ = ("request_id", "conversations", "next_page_token")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    conversations: _containers.RepeatedCompositeFieldContainer[_common_pb2.ConversationSummary]
    next_page_token: str
    def __init__(self, request_id: _Optional[str] = ..., conversations: _Optional[_Iterable[_Union[_common_pb2.ConversationSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GroupFrame(_message.Message):
    __slots__ = ("request_id", "group", "event")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    group: _common_pb2.GroupInfo
    event: _common_pb2.Message
    def __init__(self, request_id: _Optional[str] = ..., group: _Optional[_Union[_common_pb2.GroupInfo, _Mapping]] = ..., event: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...

class ReceiptCountsFrame(_message.Message):
    __slots__ = ("conversation_id", "counts")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    counts: _containers.RepeatedCompositeFieldContainer[_common_pb2.ReceiptCounts]
    def __init__(self, conversation_id: _Optional[str] = ..., counts: _Optional[_Iterable[_Union[_common_pb2.ReceiptCounts, _Mapping]]] = ...) -> None: ...

class ReceiptDetailsFrame(_message.Message):
    __slots__ = ("request_id", "conversation_id", "counts", "members")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    conversation_id: str
    counts: _common_pb2.ReceiptCounts
    members: _containers.RepeatedCompositeFieldContainer[_common_pb2.MemberReceipt]
    def __init__(self, request_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., counts: _Optional[_Union[_common_pb2.ReceiptCounts, _Mapping]] = ..., members: _Optional[_Iterable[_Union[_common_pb2.MemberReceipt, _Mapping]]] = ...) -> None: ...

class ChannelActivityFrame(_message.Message):
    __slots__ = ("channels",)
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedCompositeFieldContainer[ChannelActivity]
    def __init__(self, channels: _Optional[_Iterable[_Union[ChannelActivity, _Mapping]]] = ...) -> None: ...

class ChannelActivity(_message.Message):
    __slots__ = ("conversation_id", "last_message_id")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    last_message_id: int
    def __init__(self, conversation_id: _Optional[str] = ..., last_message_id: _Optional[int] = ...) -> None: ...

class SyncRequiredFrame(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class HelloFrame(_message.Message):
    __slots__ = ("user_id", "device_id", "connection_id", "gateway_id", "max_frame_bytes")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAME_BYTES_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    connection_id: str
    gateway_id: str
    max_frame_bytes: int
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., gateway_id: _Optional[str] = ..., max_frame_bytes: _Optional[int] = ...) -> None: ...

class AckFrame(_message.Message):
    __slots__ = ("request_id", "client_msg_id", "message_id", "conversation_id", "created_at_ms")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    client_msg_id: str
    message_id: int
    conversation_id: str
    created_at_ms: int
    def __init__(self, request_id: _Optional[str] = ..., client_msg_id: _Optional[str] = ..., message_id: _Optional[int] = ..., conversation_id: _Optional[str] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class DeliverFrame(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: _common_pb2.Message
    def __init__(self, message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...

class ErrorFrame(_message.Message):
    __slots__ = ("code", "reason", "message", "request_id", "client_msg_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    code: _common_pb2.ErrorCode
    reason: str
    message: str
    request_id: str
    client_msg_id: str
    def __init__(self, code: _Optional[_Union[_common_pb2.ErrorCode, str]] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., request_id: _Optional[str] = ..., client_msg_id: _Optional[str] = ...) -> None: ...

class PongFrame(_message.Message):
    __slots__ = ("client_time_ms", "server_time_ms")
    CLIENT_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    client_time_ms: int
    server_time_ms: int
    def __init__(self, client_time_ms: _Optional[int] = ..., server_time_ms: _Optional[int] = ...) -> None: ...
