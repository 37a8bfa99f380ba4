"""What a typed line asks for. Pure: no I/O, so every form is unit-tested."""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SendText:
    text: str


@dataclass(frozen=True, slots=True)
class ListConversations:
    pass


@dataclass(frozen=True, slots=True)
class Open:
    target: str  # a number from /list, a user name, a group title or a conversation id


@dataclass(frozen=True, slots=True)
class More:
    pass


@dataclass(frozen=True, slots=True)
class To:
    user_id: str


@dataclass(frozen=True, slots=True)
class CreateGroup:
    title: str
    member_user_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AddMembers:
    user_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RemoveMember:
    user_id: str


@dataclass(frozen=True, slots=True)
class Who:
    pass


@dataclass(frozen=True, slots=True)
class SendFile:
    path: str


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class Invalid:
    """A line that is no command: ``reason`` tells the person what to type."""

    reason: str


Command = (
    SendText
    | ListConversations
    | Open
    | More
    | To
    | CreateGroup
    | AddMembers
    | RemoveMember
    | Who
    | SendFile
    | Help
    | Quit
    | Invalid
)

HELP = """\
/list                      your conversations, newest first
/open N | NAME | ID        show a conversation (N from /list, a user, a group title)
/more                      older messages of the open conversation
/to USER                   open the 1:1 conversation with USER
/group TITLE USER...       create a group ("quote a title with spaces")
/add USER...               add members to the open group
/remove USER               remove a member from the open group
/who                       who of the open conversation is online
/send-file PATH            send a file (images show their size) to the open conversation
/help                      this text
/quit                      leave (Ctrl-D too)
anything else              is sent to the open conversation (start with // to send a /)"""

_NO_ARGS: dict[str, Command] = {
    "list": ListConversations(),
    "more": More(),
    "who": Who(),
    "help": Help(),
    "quit": Quit(),
    "exit": Quit(),
}


def parse(line: str) -> Command | None:
    """The command of a typed line; None for a blank line."""
    text = line.strip()
    if not text:
        return None
    if text.startswith("//"):
        return SendText(text[1:])
    if not text.startswith("/"):
        return SendText(text)
    name, _, rest = text[1:].partition(" ")
    name = name.lower()
    if name in _NO_ARGS:
        return _NO_ARGS[name] if not rest.strip() else Invalid(f"/{name} takes no arguments")
    try:
        args = shlex.split(rest)
    except ValueError as exc:  # an unbalanced quote
        return Invalid(f"/{name}: {exc}")
    return _with_args(name, args)


def _with_args(name: str, args: list[str]) -> Command:
    if name == "open":
        return Open(" ".join(args)) if args else Invalid("/open N, /open USER or /open ID")
    if name == "to":
        return To(args[0]) if len(args) == 1 else Invalid("/to USER")
    if name == "group":
        if len(args) < 2:
            return Invalid('/group TITLE USER... (e.g. /group "Trip planning" bob carol)')
        return CreateGroup(args[0], tuple(args[1:]))
    if name == "add":
        return AddMembers(tuple(args)) if args else Invalid("/add USER...")
    if name == "remove":
        return RemoveMember(args[0]) if len(args) == 1 else Invalid("/remove USER")
    if name in ("send-file", "file"):
        return SendFile(" ".join(args)) if args else Invalid("/send-file PATH")
    return Invalid(f"unknown command /{name}: /help lists them")
