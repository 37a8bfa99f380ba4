"""Domain values of the message service. Protobuf stops at the servicer."""

from __future__ import annotations

from dataclasses import dataclass

from chatmesh.v1 import common_pb2
from msgsvc.storage.directory import Member, MemberState

MAX_BODY_BYTES = 16 * 1024  # text; media travels by pre-signed URL, never inline
MAX_CLIENT_MSG_ID_CHARS = 64


@dataclass(frozen=True, slots=True)
class SendCommand:
    sender_user_id: str
    sender_device_id: str
    client_msg_id: str
    conversation_id: str | None
    to_user_id: str | None
    kind: int
    body: bytes
    # Media kinds: the encoded MediaAttachment as the sender gave it.
    media: bytes = b""
    # The internal client (mesh identity, e.g. "client/support") sending on
    # the user's behalf through the gRPC API; "" for a device's own send.
    # Only such a send may name no device: it gets the user's service scope.
    on_behalf_of: str = ""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    message_id: int
    conversation_id: str
    sender_user_id: str
    sender_device_id: str
    client_msg_id: str
    kind: int
    body: bytes
    created_at_ms: int
    # Media kinds: the encoded MediaAttachment as stored (server-checked).
    media: bytes = b""

    def to_proto(self) -> common_pb2.Message:
        message = common_pb2.Message(
            message_id=self.message_id,
            conversation_id=self.conversation_id,
            sender_user_id=self.sender_user_id,
            sender_device_id=self.sender_device_id,
            client_msg_id=self.client_msg_id,
            kind=self.kind,  # type: ignore[arg-type]
            created_at_ms=self.created_at_ms,
        )
        if self.kind == common_pb2.MESSAGE_KIND_SYSTEM:
            # Stored as the encoded event; clients read it structured.
            message.system.ParseFromString(self.body)
        else:
            message.body = self.body
        if self.media:
            message.media.ParseFromString(self.media)
        return message


@dataclass(frozen=True, slots=True)
class SendOutcome:
    message: StoredMessage
    recipients: tuple[str, ...]  # every member, the sender included (other devices)
    duplicate: bool
    journal_entry: str = ""  # the route journal entry to clear once routed
    via_log: bool = False  # a group message: the fan-out workers route it from the log


@dataclass(frozen=True, slots=True)
class HistoryPage:
    messages: tuple[StoredMessage, ...]  # newest first
    next_page_token: str  # empty when no older messages remain


@dataclass(frozen=True, slots=True)
class ConversationView:
    """A conversation as one member sees it in a list."""

    conversation_id: str
    kind: int
    title: str
    member_ids: tuple[str, ...]
    last_message: StoredMessage | None
    unread_count: int
    member_watermarks: tuple[MemberState, ...]  # direct conversations only
    members: tuple[Member, ...] = ()  # groups: current members with roles
    left: bool = False  # the viewer is a former member
    # Groups: the last message's (id, recipients, delivered, read).
    last_receipts: tuple[int, int, int, int] | None = None


@dataclass(frozen=True, slots=True)
class SyncSummary:
    conversations: tuple[ConversationView, ...]  # newest activity first
    next_cursor: str
    gap: bool  # not every changed conversation is listed
    floor_id: int = 0  # the lowest id this sync's pages can return


@dataclass(frozen=True, slots=True)
class SyncPage:
    messages: tuple[StoredMessage, ...]  # oldest first
    next_page_token: str
    held_left_out: int = 0  # rows read but not sent: the device named them as held


@dataclass(frozen=True, slots=True)
class ConversationPage:
    conversations: tuple[ConversationView, ...]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class ReceiptOutcome:
    state: MemberState
    advanced: bool
    member_ids: tuple[str, ...]  # who to tell
    group: bool = False  # not 1:1: only the reader's other devices hear of it
    counted: bool = False  # a group's: senders hear counts (msgsvc.group_receipts)
