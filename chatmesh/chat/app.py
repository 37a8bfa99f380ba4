"""The terminal client: a prompt_toolkit prompt over a ``Device``.

Lines from the network print above the prompt (``patch_stdout``); the
bottom toolbar shows who is typing in the open conversation. Everything
printed comes from ``render``; what the client knows lives in ``model``.
"""

from __future__ import annotations

import asyncio
import math
import mimetypes
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from prompt_toolkit import PromptSession
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.patch_stdout import patch_stdout

from chatmesh.chat import commands, render
from chatmesh.chat.model import Conversation, Conversations, TickChange, Ticks
from chatmesh.client.device import Device
from chatmesh.client.media import MediaError, upload_media
from chatmesh.client.protocol import (
    Event,
    FrameReceived,
    MessageAdded,
    ReceiptCountsChanged,
    SendFailed,
    SyncFinished,
    WatermarkChanged,
)
from chatmesh.conversation import is_valid_user_id
from chatmesh.v1 import client_pb2, common_pb2

HISTORY_PAGE = 20  # a screenful
LIST_PAGE = 50
TYPING_RENEW_S = 3.0  # the server forgets a typist after 6 s unless renewed
TYPING_PAUSE_S = 4.0  # no keystroke for this long: the user stopped typing
TOOLBAR_REFRESH_S = 0.5
OUTBOX_DRAIN_S = 3.0  # typing indicators expire without any event
_MEDIA_KINDS = {
    "image": common_pb2.MESSAGE_KIND_IMAGE,
    "video": common_pb2.MESSAGE_KIND_VIDEO,
    "audio": common_pb2.MESSAGE_KIND_VOICE,
}


def _read(path: Path) -> bytes:
    return path.expanduser().read_bytes()


def _now_ms() -> int:
    return int(time.time() * 1000)


class ChatApp:
    def __init__(
        self, device: Device, http: httpx.AsyncClient, *, echo: Callable[[str], None] = print
    ) -> None:
        self.device = device
        self.me = device.user_id
        self._http = http
        self._echo = echo
        self.conversations = Conversations(self.me)
        self.ticks = Ticks(self.me)
        self._open: Conversation | None = None
        self._page_token = ""  # where /more goes on from
        self._listed: list[str] = []  # conversation ids by their /list number
        self._live = False  # the first catch-up is done: new messages are news
        self._read_up_to: dict[str, int] = {}
        self._typing: dict[str, dict[str, float]] = {}  # conversation -> user -> until
        self._presence: dict[str, common_pb2.Presence] = {}
        self._typing_sent_at = -math.inf
        self._typing_in: str | None = None
        self._typing_stop: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the prompt -------------------------------------------------------------

    async def run(self) -> None:
        session: PromptSession[str] = PromptSession(
            bottom_toolbar=self._toolbar, refresh_interval=TOOLBAR_REFRESH_S
        )
        session.default_buffer.on_text_changed += self._on_keystroke
        self._echo(f"Hello {self.me}. Catching up… (/help lists the commands)")
        with patch_stdout(raw=True):
            while True:
                try:
                    line = await session.prompt_async(self._prompt)
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    break
                command = commands.parse(line)
                if isinstance(command, commands.Quit):
                    break
                if command is not None:
                    try:
                        await self.do(command)
                    except ConnectionError:
                        self._echo("! not connected yet: try again in a moment")
                    except TimeoutError:
                        self._echo("! no answer in time: try again")
            await self._stop_typing()
            await self._drain_outbox()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _prompt(self) -> str:
        return f"[{self._open.name(self.me)}] > " if self._open is not None else "> "

    def _toolbar(self) -> str:
        if not self.device.connected:
            state = "connecting…"
        elif self._open is None:
            state = "/list, /open N or /to USER to start"
        else:
            state = self._open.name(self.me)
            typing = self._typing_now(self._open.conversation_id)
            if typing:
                state = f"{state} │ {typing}"
        return f" {self.me} │ {state}"

    async def _drain_outbox(self) -> None:
        # Messages typed just before /quit get a moment to be acked.
        for _ in range(round(OUTBOX_DRAIN_S / 0.1)):
            if self.device.outbox_empty:
                break
            await asyncio.sleep(0.1)
        if not self.device.outbox_empty:
            self._echo("! some messages were not sent yet; they are lost with this session")

    # -- commands ---------------------------------------------------------------

    async def do(self, command: commands.Command) -> None:
        match command:
            case commands.SendText(text):
                await self._send(text)
            case commands.ListConversations():
                await self._list()
            case commands.Open(target):
                await self._open_target(target)
            case commands.More():
                await self._more()
            case commands.To(user_id):
                if is_valid_user_id(user_id):
                    await self._show(self.conversations.direct(user_id))
                else:
                    self._echo(f"! {user_id} is not a user name")
            case commands.CreateGroup(title, members):
                await self._create_group(title, members)
            case commands.AddMembers(user_ids):
                await self._change_group(
                    client_pb2.ChangeGroupFrame(
                        add_members=client_pb2.AddMembersChange(user_ids=user_ids)
                    )
                )
            case commands.RemoveMember(user_id):
                await self._change_group(
                    client_pb2.ChangeGroupFrame(
                        remove_member=client_pb2.RemoveMemberChange(user_id=user_id)
                    )
                )
            case commands.Who():
                await self._who()
            case commands.SendFile(path):
                await self._send_file(Path(path))
            case commands.Help():
                self._echo(commands.HELP)
            case commands.Invalid(reason):
                self._echo(f"! {reason}")

    async def _ask(self, frame: client_pb2.ClientFrame, kind: str) -> client_pb2.ServerFrame | None:
        """The answer of ``kind``, or None after printing the refusal."""
        answer = await self.device.request(frame)
        if answer.WhichOneof("kind") == "error":
            self._echo(f"! {answer.error.reason}: {answer.error.message}")
            return None
        if answer.WhichOneof("kind") != kind:
            self._echo(f"! unexpected answer {answer.WhichOneof('kind')}")
            return None
        return answer

    async def _send(self, text: str) -> None:
        conversation = self._open
        if conversation is None:
            self._echo("! open a conversation first: /list, /open N or /to USER")
            return
        await self._stop_typing()
        peer = conversation.peer(self.me)
        if peer is not None:
            # By user: the first message of a 1:1 creates the conversation.
            self.device.send_text(to_user=peer, body=text)
        else:
            self.device.send_text(conversation=conversation.conversation_id, body=text)

    async def _list(self) -> None:
        answer = await self._ask(
            client_pb2.ClientFrame(
                list_conversations=client_pb2.ListConversationsFrame(page_size=LIST_PAGE)
            ),
            "conversation_list",
        )
        if answer is None:
            return
        for summary in answer.conversation_list.conversations:
            if not summary.left:
                self.conversations.apply_summary(summary)
        self._print_list()

    def _print_list(self) -> None:
        listed = [c for c in self.conversations.ordered() if c.last_message is not None]
        self._listed = [c.conversation_id for c in listed]
        if not listed:
            self._echo("No conversations yet: /to USER starts one.")
            return
        now = _now_ms()
        for number, c in enumerate(listed, 1):
            self._echo(
                render.list_line(number, c.name(self.me), c.unread, c.last_message, self.me, now)
            )

    async def _open_target(self, target: str) -> None:
        conversation = self.conversations.find(target, self._listed)
        if conversation is None and not target.isdigit() and is_valid_user_id(target):
            conversation = self.conversations.direct(target)
        if conversation is None:
            self._echo(f"! no conversation {target}: /list shows them")
            return
        await self._show(conversation)

    async def _show(self, conversation: Conversation) -> None:
        if self._open is not None and self._open is not conversation:
            await self._stop_typing()
        self._open = conversation
        self._page_token = ""
        self._echo(f"── {conversation.name(self.me)} ──")
        await self._history(first=True)

    async def _more(self) -> None:
        if self._open is None:
            self._echo("! open a conversation first")
        elif not self._page_token:
            self._echo("(no older messages)")
        else:
            self._echo(f"── earlier in {self._open.name(self.me)} ──")
            await self._history(first=False)

    async def _history(self, *, first: bool) -> None:
        conversation = self._open
        assert conversation is not None
        answer = await self.device.request(
            client_pb2.ClientFrame(
                history=client_pb2.HistoryFrame(
                    conversation_id=conversation.conversation_id,
                    page_size=HISTORY_PAGE,
                    page_token=self._page_token,
                )
            )
        )
        if answer.WhichOneof("kind") == "error":
            if answer.error.reason == "CONVERSATION_NOT_FOUND" and conversation.peer(self.me):
                self._echo("(no messages yet: type one to start)")
            else:
                self._echo(f"! {answer.error.reason}: {answer.error.message}")
            return
        page = answer.history_page
        messages = sorted(page.messages, key=lambda m: m.message_id)
        self._page_token = page.next_page_token
        if page.next_page_token:
            self._echo("(/more for older messages)")
        if not messages and first:
            self._echo("(no messages yet)")
        now = _now_ms()
        for message in messages:
            self.device.protocol.store.add(message)  # live copies of these are not news
            tick = None
            if message.sender_user_id == self.me and message.kind != common_pb2.MESSAGE_KIND_SYSTEM:
                self.ticks.sent(message, conversation.watermark_tick(message.message_id, self.me))
                tick = self.ticks.tick(message.message_id)
            self._echo(render.message_line(message, self.me, now, tick))
        if first and messages:
            if messages[-1].message_id > conversation.newest_id:
                conversation.last_message = messages[-1]
            conversation.unread = 0
            self._mark_read(conversation.conversation_id, messages[-1].message_id)

    async def _create_group(self, title: str, members: tuple[str, ...]) -> None:
        answer = await self._ask(
            client_pb2.ClientFrame(
                create_group=client_pb2.CreateGroupFrame(
                    client_group_id=uuid.uuid4().hex, title=title, member_user_ids=members
                )
            ),
            "group",
        )
        if answer is not None:
            await self._show(self.conversations.apply_group(answer.group.group))

    async def _change_group(self, change: client_pb2.ChangeGroupFrame) -> None:
        conversation = self._open
        if conversation is None or conversation.peer(self.me) is not None:
            self._echo("! open a group first")
            return
        change.conversation_id = conversation.conversation_id
        answer = await self._ask(client_pb2.ClientFrame(change_group=change), "group")
        if answer is None:
            return
        self.conversations.apply_group(answer.group.group)
        event = answer.group.event
        # Into the store first: the copy delivered live is then not shown again.
        if event.message_id and self.device.protocol.store.add(event).added:
            self._echo(render.message_line(event, self.me, _now_ms()))

    async def _who(self) -> None:
        conversation = self._open
        if conversation is None:
            self._echo("! open a conversation first")
            return
        if not conversation.member_user_ids and conversation.peer(self.me) is None:
            await self._refresh_group(conversation)
        others = [u for u in conversation.member_user_ids if u != self.me]
        if not others:
            self._echo("(nobody else here)")
            return
        answer = await self._ask(
            client_pb2.ClientFrame(watch_presence=client_pb2.WatchPresenceFrame(user_ids=others)),
            "presence",
        )
        if answer is None:
            return
        now = _now_ms()
        for presence in answer.presence.presences:
            self._presence[presence.user_id] = presence
            self._echo(render.presence_line(presence, now))
        for user_id in answer.presence.refused_user_ids:
            self._echo(f"{user_id}: unknown")

    async def _refresh_group(self, conversation: Conversation) -> None:
        answer = await self._ask(
            client_pb2.ClientFrame(
                get_group=client_pb2.GetGroupFrame(conversation_id=conversation.conversation_id)
            ),
            "group",
        )
        if answer is not None:
            self.conversations.apply_group(answer.group.group)

    async def _send_file(self, path: Path) -> None:
        conversation = self._open
        if conversation is None:
            self._echo("! open a conversation first")
            return
        try:
            data = await asyncio.to_thread(_read, path)
        except OSError as exc:
            self._echo(f"! cannot read {path}: {exc.strerror}")
            return
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        kind = _MEDIA_KINDS.get(content_type.split("/")[0], common_pb2.MESSAGE_KIND_DOCUMENT)
        self._echo(f"uploading {path.name} ({render.size(len(data))})…")
        try:
            media = await upload_media(
                self.device.request, self._http, data, kind=kind, content_type=content_type
            )
        except MediaError as exc:
            self._echo(f"! not sent: {exc}")
            return
        if kind == common_pb2.MESSAGE_KIND_DOCUMENT:
            media.file_name = path.name
        peer = conversation.peer(self.me)
        if peer is not None:
            self.device.send_media(media, kind=kind, to_user=peer)
        else:
            self.device.send_media(media, kind=kind, conversation=conversation.conversation_id)

    # -- typing -----------------------------------------------------------------

    def _on_keystroke(self, buffer: Buffer) -> None:
        conversation = self._open
        text = buffer.text
        # A 1:1 exists from its first message on: typing in it before would be refused.
        if conversation is None or not conversation.newest_id or not text or text[0] == "/":
            return
        loop = asyncio.get_running_loop()
        if self._typing_in != conversation.conversation_id or (
            loop.time() - self._typing_sent_at >= TYPING_RENEW_S
        ):
            self._typing_in = conversation.conversation_id
            self._typing_sent_at = loop.time()
            self._post_typing(conversation.conversation_id, True)
        if self._typing_stop is not None:
            self._typing_stop.cancel()
        self._typing_stop = loop.call_later(
            TYPING_PAUSE_S, lambda: self._spawn(self._stop_typing(), "typing-stop")
        )

    async def _stop_typing(self) -> None:
        if self._typing_stop is not None:
            self._typing_stop.cancel()
            self._typing_stop = None
        if self._typing_in is not None:
            conversation_id, self._typing_in = self._typing_in, None
            self._typing_sent_at = -math.inf
            await self.device.post(
                client_pb2.ClientFrame(
                    typing=client_pb2.TypingFrame(conversation_id=conversation_id, typing=False)
                )
            )

    def _post_typing(self, conversation_id: str, typing: bool) -> None:
        frame = client_pb2.ClientFrame(
            typing=client_pb2.TypingFrame(conversation_id=conversation_id, typing=typing)
        )
        self._spawn(self._posted(frame), "typing")

    async def _posted(self, frame: client_pb2.ClientFrame) -> None:
        await self.device.post(frame)

    def _typing_now(self, conversation_id: str) -> str:
        now = asyncio.get_running_loop().time()
        typists = self._typing.get(conversation_id, {})
        return render.typing_text([u for u, until in typists.items() if until > now])

    def _on_typing_activity(self, activity: client_pb2.TypingActivityFrame) -> None:
        now = asyncio.get_running_loop().time()
        typists = self._typing.setdefault(activity.conversation_id, {})
        for user_id in activity.typing_user_ids:
            typists[user_id] = now + activity.ttl_ms / 1000
        for user_id in activity.stopped_user_ids:
            typists.pop(user_id, None)

    # -- events from the device ---------------------------------------------------

    def on_event(self, event: Event) -> None:
        if isinstance(event, MessageAdded):
            self._on_message(event)
        elif isinstance(event, SyncFinished):
            self._on_sync(event)
        elif isinstance(event, WatermarkChanged):
            self._on_watermark(event.watermark)
        elif isinstance(event, ReceiptCountsChanged):
            self._print_ticks(self.ticks.on_counts(event.conversation_id, event.counts))
        elif isinstance(event, SendFailed):
            self._echo(f"✗ not sent: {event.error.reason} {event.error.message}")
        elif isinstance(event, FrameReceived):
            self._on_frame(event.frame)

    def _on_message(self, event: MessageAdded) -> None:
        message = event.message
        open_id = self._open.conversation_id if self._open is not None else None
        conversation = self.conversations.on_message(message, open_id)
        mine = message.sender_user_id == self.me
        if mine and message.kind != common_pb2.MESSAGE_KIND_SYSTEM:
            self.ticks.sent(message, conversation.watermark_tick(message.message_id, self.me))
        if not self._live and event.source == "sync":
            return  # the first catch-up: /list sums it up
        now = _now_ms()
        if message.conversation_id == open_id:
            tick = self.ticks.tick(message.message_id) if mine else None
            self._echo(render.message_line(message, self.me, now, tick))
            if not mine:
                self._mark_read(message.conversation_id, message.message_id)
        elif mine:
            said = render.body_text(message, self.me)
            self._echo(f"✓ sent to {conversation.name(self.me)}: {said}")
        elif conversation.peer(self.me) is None and not conversation.title:
            # A group this device has not heard of (joined while away): name it first.
            self._spawn(self._notice_after_lookup(conversation, message), "group-lookup")
        else:
            self._notice(conversation, message)

    def _notice(self, conversation: Conversation, message: common_pb2.Message) -> None:
        name = conversation.name(self.me)
        self._echo(render.notice_line(name, message, conversation.unread, self.me))

    async def _notice_after_lookup(
        self, conversation: Conversation, message: common_pb2.Message
    ) -> None:
        try:
            await self._refresh_group(conversation)
        finally:
            self._notice(conversation, message)

    def _on_sync(self, event: SyncFinished) -> None:
        if not event.outcome.completed:
            self._echo(f"! catch-up failed: {event.outcome.reason}")
        elif not self._live:
            self._live = True
            self._spawn(self._greet(), "greet")

    async def _greet(self) -> None:
        answer = await self._ask(
            client_pb2.ClientFrame(
                list_conversations=client_pb2.ListConversationsFrame(page_size=LIST_PAGE)
            ),
            "conversation_list",
        )
        if answer is None:
            return
        summaries = [s for s in answer.conversation_list.conversations if not s.left]
        for summary in summaries:
            self.conversations.apply_summary(summary)
        unread = sum(s.unread_count for s in summaries)
        self._echo(
            f"Connected as {self.me}: {len(summaries)} conversations, {unread} unread."
            " /list shows them."
        )

    def _on_watermark(self, watermark: common_pb2.Watermark) -> None:
        conversation = self.conversations.get(watermark.conversation_id)
        if conversation is None or watermark.user_id == self.me:
            return  # the user's own other devices: not a tick
        delivered, read = conversation.watermarks.get(watermark.user_id, (0, 0))
        conversation.watermarks[watermark.user_id] = (
            max(delivered, watermark.delivered_message_id),
            max(read, watermark.read_message_id),
        )
        self._print_ticks(self.ticks.on_watermark(conversation))

    def _print_ticks(self, changes: list[TickChange]) -> None:
        for change in changes:
            self._echo(render.tick_line(change.tick, change.by, change.message, self.me))

    def _on_frame(self, frame: client_pb2.ServerFrame) -> None:
        kind = frame.WhichOneof("kind")
        if kind == "typing_activity":
            self._on_typing_activity(frame.typing_activity)
        elif kind == "presence":
            for presence in frame.presence.presences:
                known = self._presence.get(presence.user_id)
                if known is not None and known.changed_at_ms > presence.changed_at_ms:
                    continue
                self._presence[presence.user_id] = presence
                if known is None or known.status != presence.status:
                    self._echo(render.presence_line(presence, _now_ms()))
        elif kind == "error":
            self._echo(f"! {frame.error.reason}: {frame.error.message}")

    def _mark_read(self, conversation_id: str, message_id: int) -> None:
        if message_id <= self._read_up_to.get(conversation_id, 0):
            return
        self._read_up_to[conversation_id] = message_id
        frame = client_pb2.ClientFrame(
            mark=client_pb2.MarkFrame(
                conversation_id=conversation_id,
                kind=common_pb2.RECEIPT_KIND_READ,
                message_id=message_id,
            )
        )
        self._spawn(self._marked(frame), "mark-read")

    async def _marked(self, frame: client_pb2.ClientFrame) -> None:
        try:
            await self.device.request(frame)
        except (ConnectionError, TimeoutError):
            # Not reported: the next message shown reports it again.
            self._read_up_to.pop(frame.mark.conversation_id, None)

    # -- background work ----------------------------------------------------------

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run(), name=f"chat:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, ConnectionError):
            self._echo("! not connected: try again in a moment")
        elif error is not None:
            self._echo(f"! {task.get_name()} failed: {error!r}")
