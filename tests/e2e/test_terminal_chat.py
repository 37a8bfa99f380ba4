"""The terminal chat client as a person uses it: two clients in
pseudo-terminals, typed into key by key, read from their screens as text."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pexpect
import pytest

from chatmesh.devcluster import LocalCluster
from tests.conftest import unique

REPO = Path(__file__).resolve().parents[2]
SCREEN = (30, 100)  # rows, columns
WAIT_S = 15.0
KEY_DELAY_S = 0.03  # a fast typist, slow enough to be seen typing
CURSOR_POSITION_REQUEST = "\x1b[6n"
_SKIP = re.compile(r"\x1b\[(\d*)C")
# Colours, cursor moves, title and mode changes: what a terminal acts on, not shows.
_CONTROL = re.compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[=>()][0-9A-Za-z]?"
)


class Terminal:
    """One client in a pseudo-terminal, and all the text it has shown."""

    def __init__(self, cluster: LocalCluster, user: str) -> None:
        self.user = user
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "chatmesh.chat", user, "--edge", cluster.edge_url],
            cwd=str(REPO),
            env={**os.environ, "TERM": "xterm-256color"},
            dimensions=SCREEN,
            encoding="utf-8",
            codec_errors="replace",
        )
        self.child.delaybeforesend = None  # keys are paced by type() alone
        self.text = ""
        self._seen = 0  # where the next expectation starts looking

    def _pump(self, timeout_s: float) -> None:
        try:
            chunk = self.child.read_nonblocking(65536, timeout=timeout_s)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            raise AssertionError(f"{self.user} exited; screen:\n{self.text[-2000:]}") from None
        if CURSOR_POSITION_REQUEST in chunk:
            # As a terminal answers: prompt_toolkit draws the bottom toolbar
            # only once it knows how far the screen's bottom is.
            self.child.send("\x1b[1;1R")
        # A redraw skips cells that already show the right character.
        chunk = _SKIP.sub(lambda m: " " * int(m.group(1) or 1), chunk)
        self.text += _CONTROL.sub("", chunk).replace("\r", "")

    def expect(self, pattern: str, timeout_s: float = WAIT_S) -> re.Match[str]:
        """Waits for text matching ``pattern`` shown after the last match."""
        deadline = time.monotonic() + timeout_s
        compiled = re.compile(pattern)
        while True:
            found = compiled.search(self.text, self._seen)
            if found is not None:
                self._seen = found.end()
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.user} never showed {pattern!r}; screen:\n{self.text[-2000:]}"
                )
            self._pump(min(remaining, 0.2))

    def type(self, line: str) -> None:
        """Key by key, then Enter."""
        for key in line:
            self.child.send(key)
            time.sleep(KEY_DELAY_S)
        self.child.send("\r")

    def quit(self) -> None:
        """``/quit``, and the client exits by itself."""
        self.child.send("/quit\r")
        try:
            self.child.expect(pexpect.EOF, timeout=WAIT_S)
        except pexpect.TIMEOUT:
            raise AssertionError(
                f"{self.user} did not quit; screen:\n{self.text[-2000:]}"
            ) from None
        self.child.close()
        assert self.child.exitstatus == 0

    def kill(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.mark.e2e
def test_two_people_chat_in_terminals(cluster: LocalCluster) -> None:
    alice_id, bob_id = unique("alice"), unique("bob")
    alice = Terminal(cluster, alice_id)
    bob = Terminal(cluster, bob_id)
    try:
        alice.expect(rf"Connected as {alice_id}: 0 conversations")
        bob.expect(rf"Connected as {bob_id}: 0 conversations")

        alice.type(f"/to {bob_id}")
        alice.expect(rf"── {bob_id} ──")
        alice.expect(r"no messages yet")

        alice.type("hello bob, lunch at noon?")
        alice.expect(r"\d\d:\d\d you: hello bob, lunch at noon\?  ✓")
        # Not open on bob's side: a one-line notice.
        bob.expect(rf"\[{alice_id}\] {alice_id}: hello bob, lunch at noon\? \(1 unread\)")
        # Bob's device reports it delivered by itself.
        alice.expect(rf'✓✓ delivered to {bob_id}: "hello bob, lunch at noon\?"')

        bob.type("/list")
        bob.expect(rf" 1\. {alice_id} \(1 unread\) — \d\d:\d\d {alice_id}: hello bob, lunch")
        bob.type("/open 1")
        bob.expect(rf"── {alice_id} ──")
        bob.expect(rf"\d\d:\d\d {alice_id}: hello bob, lunch at noon\?")
        # Shown in the open conversation: read.
        alice.expect(rf'✓✓ read by {bob_id}: "hello bob, lunch at noon\?"')

        # Bob types; alice's toolbar says so while he does.
        for key in "sure, see you":
            bob.child.send(key)
            time.sleep(KEY_DELAY_S)
        alice.expect(rf"{bob_id} is typing…")
        bob.child.send(" there\r")
        bob.expect(r"\d\d:\d\d you: sure, see you there  ✓")
        alice.expect(rf"\d\d:\d\d {bob_id}: sure, see you there")
        assert "{" not in alice.text and "{" not in bob.text, "JSON on screen"
        alice.quit()
        bob.quit()
    finally:
        alice.kill()
        bob.kill()


@pytest.mark.e2e
def test_a_group_in_terminals(cluster: LocalCluster, tmp_path: Path) -> None:
    alice_id, bob_id = unique("alice"), unique("bob")
    alice = Terminal(cluster, alice_id)
    bob = Terminal(cluster, bob_id)
    try:
        alice.expect(rf"Connected as {alice_id}")
        bob.expect(rf"Connected as {bob_id}")

        alice.type(f'/group "Trip plan" {bob_id}')
        alice.expect(r"── Trip plan ──")
        alice.expect(rf'· you created "Trip plan" with {bob_id}')
        bob.expect(rf'\[Trip plan\] {alice_id} created "Trip plan" with you \(1 unread\)')

        alice.type("/who")
        alice.expect(rf"{bob_id}: online")

        alice.type("who brings the map?")
        alice.expect(r"you: who brings the map\?  ✓")
        bob.expect(rf"\[Trip plan\] {alice_id}: who brings the map\? \(2 unread\)")
        bob.type("/open Trip plan")
        bob.expect(rf"\d\d:\d\d {alice_id}: who brings the map\?")
        alice.expect(r'✓✓ read by 1 of 1: "who brings the map\?"')

        notes = tmp_path / "route.txt"
        notes.write_text("north, then east\n")
        alice.type(f"/send-file {notes}")
        bob.expect(rf"{alice_id}: \[document route\.txt, 17 B\]")

        bob.type("/more")
        bob.expect(r"no older messages")
        alice.quit()
        bob.quit()
    finally:
        alice.kill()
        bob.kill()
