"""What the terminal client makes of a typed line."""

from __future__ import annotations

import pytest

from chatmesh.chat import commands
from chatmesh.chat.commands import (
    AddMembers,
    CreateGroup,
    Help,
    Invalid,
    ListConversations,
    More,
    Open,
    Quit,
    RemoveMember,
    SendFile,
    SendText,
    To,
    Who,
)


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("hello there", SendText("hello there")),
        ("  spaced out  ", SendText("spaced out")),
        ("//etc/hosts is a path", SendText("/etc/hosts is a path")),
        ("/list", ListConversations()),
        ("/LIST", ListConversations()),
        ("/open 2", Open("2")),
        ("/open bob", Open("bob")),
        ('/open "Trip planning"', Open("Trip planning")),
        ("/more", More()),
        ("/to bob", To("bob")),
        ('/group "Trip planning" bob carol', CreateGroup("Trip planning", ("bob", "carol"))),
        ("/group Team bob", CreateGroup("Team", ("bob",))),
        ("/add carol dave", AddMembers(("carol", "dave"))),
        ("/remove carol", RemoveMember("carol")),
        ("/who", Who()),
        ("/send-file ~/cat.jpg", SendFile("~/cat.jpg")),
        ("/help", Help()),
        ("/quit", Quit()),
        ("/exit", Quit()),
    ],
)
def test_lines_parse_to_commands(line: str, command: commands.Command) -> None:
    assert commands.parse(line) == command


def test_a_blank_line_is_nothing() -> None:
    assert commands.parse("   ") is None


@pytest.mark.parametrize(
    "line",
    [
        "/to",
        "/to bob carol",
        "/group Lonely",
        "/add",
        "/remove",
        "/open",
        "/list 3",
        "/dance",
        '/group "unclosed bob',
    ],
)
def test_malformed_commands_say_what_to_type(line: str) -> None:
    parsed = commands.parse(line)
    assert isinstance(parsed, Invalid)
    assert parsed.reason


def test_help_names_every_command() -> None:
    for name in ("/list", "/open", "/more", "/to", "/group", "/add", "/remove", "/who", "/quit"):
        assert name in commands.HELP
