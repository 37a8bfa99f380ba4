"""Accepting a message: authorise, claim the client id, persist. Then route.

The order is the contract: nothing is acknowledged before the row is durable
in Cassandra, and routing starts only after that. A client_msg_id is scoped
to the sending device (``msgsvc.send_identity``). A retry of the same send
reuses the first attempt's id; if that attempt died before writing, the
retry writes the row, otherwise it returns the stored one. An attempt with
the same key but other content is refused (``CLIENT_MSG_ID_REUSED``): an
ack always names a row that holds exactly the send it answers. Writes of an
id obey the commit bound of ``msgsvc.visibility`` so that the catch-up
cursor never skips a late-committed message. Every accepted message, a
retried one included, is entered in the route journal before ``send``
returns, so routing that dies with the process is replayed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from chatmesh import snowflake
from chatmesh.clock import Clock
from chatmesh.conversation import direct_conversation_id, is_direct, is_valid_user_id
from chatmesh.errors import (
    ChatmeshError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from chatmesh.v1 import common_pb2
from msgsvc.budgets import UserBudgets
from msgsvc.devices import DeviceCheck
from msgsvc.media.limits import KINDS as MEDIA_KINDS
from msgsvc.message_log import LogEntry, MessageLog
from msgsvc.model import (
    MAX_BODY_BYTES,
    MAX_CLIENT_MSG_ID_CHARS,
    SendCommand,
    SendOutcome,
    StoredMessage,
)
from msgsvc.send_identity import SendKey, send_digest
from msgsvc.storage.claims import Claim, ClaimStore
from msgsvc.storage.directory import ADMIN, CHANNEL, DIRECT, Conversation, Directory
from msgsvc.storage.messages import MessageStore
from msgsvc.storage.route_journal import RouteJournal, RouteRef
from msgsvc.visibility import COMMIT_BOUND_MS, may_start_write, reclaimable, send_in_doubt

log = logging.getLogger(__name__)

T = TypeVar("T")

_KNOWN_KINDS = frozenset({common_pb2.MESSAGE_KIND_TEXT, *MEDIA_KINDS})


class IdSource(Protocol):
    def next_id(self) -> int: ...


class MediaAttacher(Protocol):
    async def attach(self, sender_user_id: str, kind: int, given: bytes) -> bytes:
        """The checked attachment to store, encoded; raises if the sender may
        not send this media."""
        ...

    async def reference(self, attachment: bytes, conversation_id: str, message_id: int) -> None:
        """Lets the conversation's members fetch the media; before the write."""
        ...


class MessageSender:
    def __init__(
        self,
        *,
        directory: Directory,
        claims: ClaimStore,
        messages: MessageStore,
        ids: IdSource,
        clock: Clock,
        devices: DeviceCheck,
        journal: RouteJournal,
        log: MessageLog,
        budgets: UserBudgets,
        media: MediaAttacher,
    ) -> None:
        self._media = media
        self._budgets = budgets
        self._log = log
        self._journal = journal
        self._devices = devices
        self._directory = directory
        self._claims = claims
        self._messages = messages
        self._ids = ids
        self._clock = clock

    async def send(self, command: SendCommand) -> SendOutcome:
        _validate(command)
        # Taken before the first await: frames of one connection arrive in
        # order and start in order, so a device's quick successive sends get
        # increasing ids and are shown in the order they were sent.
        candidate_id = self._ids.next_id()
        if command.sender_device_id or not command.on_behalf_of:
            # An empty device passes only for an authenticated, audited
            # internal client; from a device's stream it is refused here.
            await self._devices.require(command.sender_user_id, command.sender_device_id)
        if not command.on_behalf_of:
            await self._budgets.write(command.sender_user_id)
        target = await self._resolve_target(command)
        attachment = (
            await self._media.attach(command.sender_user_id, command.kind, command.media)
            if command.kind in MEDIA_KINDS
            else b""
        )
        key = SendKey(command.sender_user_id, command.sender_device_id, command.client_msg_id)
        digest = send_digest(
            command.sender_device_id, target.conversation_id, command.kind, command.body, attachment
        )
        claim = await self._claims.claim(key, candidate_id, target.conversation_id, digest)
        if claim.legacy:
            claim = await self._adopt_legacy(
                key, claim, candidate_id, target.conversation_id, digest
            )
        _require_same_send(claim, digest)
        # Created only now, so that a refused send leaves no conversation behind.
        conversation = target.conversation or await self._directory.ensure_direct(
            target.conversation_id,
            command.sender_user_id,
            target.recipient,
            # A send that took its id earlier may still be writing into this
            # conversation: history must reach back to that id too.
            created_at_ms=snowflake.timestamp_ms(min(candidate_id, claim.message_id))
            - COMMIT_BOUND_MS,
        )
        if not claim.won:
            stored = await self._messages.get(claim.conversation_id, claim.message_id)
            if stored is not None:
                _require_row_of(stored, command, attachment)
                return await self._hand_over(conversation, stored, duplicate=True)
            claim = await self._settle_unwritten(key, claim, candidate_id)
            _require_same_send(claim, digest)
        message = StoredMessage(
            message_id=claim.message_id,
            conversation_id=conversation.conversation_id,
            sender_user_id=command.sender_user_id,
            sender_device_id=command.sender_device_id,
            client_msg_id=command.client_msg_id,
            kind=command.kind,
            body=command.body,
            created_at_ms=snowflake.timestamp_ms(claim.message_id),
            media=attachment,
        )
        if attachment:
            await self._media.reference(attachment, message.conversation_id, message.message_id)
        # The conversation's activity mark moves first, so that a sync which
        # can read the row also finds the conversation changed.
        await self._directory.touch(
            message.conversation_id, message.message_id, message.sender_user_id
        )
        if not may_start_write(message.message_id, self._clock.now_ms()):
            raise send_in_doubt()
        return await self._hand_over(conversation, message, duplicate=not claim.won, write=True)

    async def _hand_over(
        self,
        conversation: Conversation,
        message: StoredMessage,
        *,
        duplicate: bool,
        write: bool = False,
    ) -> SendOutcome:
        """Writes the row (unless it is stored already) and, alongside, hands
        the message to whatever routes it: the route journal of this instance
        for a 1:1 message, routed right after the ack; the message log for a
        group message, routed by the fan-out workers. A hand-over whose
        write fails names a row that never appears, which both drop after
        the commit bound. A retry hands over again: routing is at least once."""
        writing = (
            self._messages.write(message, may_start=self._may_start(message.message_id))
            if write
            else _nothing()
        )
        if conversation.kind == DIRECT:
            entry = await _beside(writing, self._journal.record(_ref(message)))
            return SendOutcome(message, conversation.member_ids, duplicate, entry)
        await _beside(
            writing,
            self._log.append(LogEntry(message.conversation_id, message.message_id, message.kind)),
        )
        return SendOutcome(message, (), duplicate, via_log=True)

    def _may_start(self, message_id: int) -> Callable[[], bool]:
        return lambda: may_start_write(message_id, self._clock.now_ms())

    async def _adopt_legacy(
        self,
        key: SendKey,
        legacy: Claim,
        fresh_id: int,
        conversation_id: str,
        digest: str,
    ) -> Claim:
        """The user holds a user-scoped claim of this client_msg_id from
        before decision 0010. Its row says whether it is this device's send;
        until the row can be read, nobody can tell."""
        row = await self._messages.get(legacy.conversation_id, legacy.message_id)
        if row is None:
            if not reclaimable(legacy.message_id, self._clock.now_ms()):
                # It may still land and be this device's: storing this one
                # now could store one send twice. The client retries shortly.
                raise send_in_doubt()
            # Never stored, and now never will be: that attempt was not acked.
        elif row.sender_device_id == key.device_id:
            # This device's earlier send (or an earlier one of the service
            # scope): bind its id and content, so this attempt is answered
            # with its row, or refused if the content differs.
            adopted = await self._claims.claim(
                key,
                row.message_id,
                row.conversation_id,
                send_digest(
                    row.sender_device_id, row.conversation_id, row.kind, row.body, row.media
                ),
                consult_legacy=False,
            )
            return dataclasses.replace(adopted, won=False)  # its row exists
        # Another device's send: this one is a different message.
        return await self._claims.claim(
            key, fresh_id, conversation_id, digest, consult_legacy=False
        )

    async def _settle_unwritten(self, key: SendKey, claim: Claim, fresh_id: int) -> Claim:
        """A claim exists but its row does not: the first attempt died, is
        still writing, or its id is too old to be written now."""
        now = self._clock.now_ms()
        if may_start_write(claim.message_id, now):
            return claim  # rewrite the same row: writes are idempotent
        if not reclaimable(claim.message_id, now):
            # The first attempt may still land; writing now could store the
            # message twice. The client retries shortly.
            raise send_in_doubt()
        settled = await self._claims.reclaim(key, claim, fresh_id)
        if not settled.won and not may_start_write(settled.message_id, now):
            raise send_in_doubt()
        # Won, or a concurrent retry re-claimed first with a fresh id: writing
        # that same row again is harmless.
        return settled

    async def _resolve_target(self, command: SendCommand) -> _Target:
        sender = command.sender_user_id
        if command.to_user_id is not None:
            recipient = command.to_user_id
            if not is_valid_user_id(recipient):
                raise InvalidArgument("INVALID_USER_ID", f"{recipient!r} is not a valid user id")
            conversation_id = direct_conversation_id(sender, recipient)
            existing = await self._directory.conversation(conversation_id)
            if existing is not None:
                return _Target(conversation_id, existing, recipient)
            known = await self._directory.existing_users({sender, recipient})
            if recipient not in known:
                raise NotFound("USER_NOT_FOUND", f"no user {recipient!r}")
            if sender not in known:
                raise NotFound("SENDER_NOT_FOUND", "the sending user is not registered")
            return _Target(conversation_id, None, recipient)
        assert command.conversation_id is not None
        if is_direct(command.conversation_id):
            conversation = await self._directory.conversation(command.conversation_id)
        else:
            # Only the sender's standing is read: a send into a 500-member
            # group costs what a 1:1 send does (members are the fan-out's).
            conversation = await self._directory.conversation_for(command.conversation_id, sender)
        # Non-members get the same answer as for a missing conversation, so
        # conversation ids cannot be probed for existence.
        if conversation is None or sender not in conversation.member_ids:
            raise NotFound("CONVERSATION_NOT_FOUND", "no such conversation")
        if conversation.kind == CHANNEL:
            member = conversation.member(sender)
            if member is None or member.role != ADMIN:
                raise PermissionDenied("NOT_CHANNEL_ADMIN", "only the channel's admins post")
        return _Target(conversation.conversation_id, conversation, "")


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a send goes, resolved and authorised."""

    conversation_id: str
    conversation: Conversation | None  # None: a direct pair's first message creates it
    recipient: str  # of a direct conversation named by user; "" otherwise


async def _nothing() -> None:
    return None


async def _beside(main: Awaitable[None], beside: Coroutine[Any, Any, T]) -> T:
    """Both at once, like ``asyncio.gather``, but with one task instead of
    two (on the send path a task costs more than the rest of this step):
    ``beside`` runs as a task while ``main`` is awaited here. As with
    gather, a failure of ``main`` leaves ``beside`` running."""
    task = asyncio.ensure_future(beside)
    try:
        await main
    except BaseException:
        task.add_done_callback(_retrieved)
        raise
    return await task


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # seen, so not reported as never retrieved


def _ref(message: StoredMessage) -> RouteRef:
    return RouteRef(message.conversation_id, message.message_id)


def _require_same_send(claim: Claim, digest: str) -> None:
    if claim.digest != digest:
        raise InvalidArgument(
            "CLIENT_MSG_ID_REUSED",
            "this device already used client_msg_id for a different message"
            " (another body, kind or conversation); choose a new one",
        )


def _require_row_of(stored: StoredMessage, command: SendCommand, attachment: bytes) -> None:
    """The row an ack would name holds this very send. The claim's digest
    already says so; a row that disagrees means something wrote over it, and
    acknowledging it would tell the client a message is stored that is not."""
    same = (
        stored.sender_user_id == command.sender_user_id
        and stored.sender_device_id == command.sender_device_id
        and stored.client_msg_id == command.client_msg_id
        and stored.kind == command.kind
        and stored.body == command.body
        and stored.media == attachment
    )
    if not same:
        log.error(
            "claimed row holds another send",
            extra={"fields": {"message_id": stored.message_id}},
        )
        raise ChatmeshError("CLAIMED_ROW_MISMATCH", "the stored message does not match this send")


def _validate(command: SendCommand) -> None:
    if not command.client_msg_id:
        raise InvalidArgument("MISSING_CLIENT_MSG_ID", "client_msg_id is required")
    if len(command.client_msg_id) > MAX_CLIENT_MSG_ID_CHARS:
        raise InvalidArgument(
            "CLIENT_MSG_ID_TOO_LONG", f"client_msg_id exceeds {MAX_CLIENT_MSG_ID_CHARS} characters"
        )
    if (command.conversation_id is None) == (command.to_user_id is None):
        raise InvalidArgument("MISSING_TARGET", "set exactly one of conversation_id, to_user_id")
    if command.kind not in _KNOWN_KINDS:
        raise InvalidArgument("UNKNOWN_KIND", "kind must be a known MessageKind")
    if len(command.body) > MAX_BODY_BYTES:
        raise InvalidArgument("BODY_TOO_LARGE", f"body exceeds {MAX_BODY_BYTES} bytes")
    if command.kind in MEDIA_KINDS:
        if not command.media:
            raise InvalidArgument("MISSING_MEDIA", "a media message needs media")
    elif command.media:
        raise InvalidArgument("MEDIA_NOT_ALLOWED", "only media kinds carry media")
    # A text body and a media caption alike.
    try:
        command.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument("BODY_NOT_UTF8", "text body must be UTF-8") from exc
