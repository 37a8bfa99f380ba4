"""Driving the web chat page (web/) in Chromium for the browser tests."""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from chatmesh.devcluster import REPO_ROOT, LocalCluster

WEB = REPO_ROOT / "web"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts" / "web"
# Long enough for a gateway restart and a reconnect backoff; short enough
# that a page that never recovers fails the test quickly.
RECOVER_MS = 20_000
# What one page sees of another's action crosses the whole stack; on a
# machine busy with the rest of the suite that takes more than playwright's
# default 5 s now and then. Only a failing expectation waits this long.
CROSS_PAGE_MS = 15_000
expect.set_options(timeout=CROSS_PAGE_MS)


def build_web() -> None:
    """Runs web/build unless web/dist is newer than every source of it."""
    built = WEB / "dist" / "app.js"
    sources = [
        *(WEB / "src").rglob("*.ts"),
        WEB / "index.html",
        WEB / "style.css",
        WEB / "package-lock.json",
    ]
    if built.exists() and built.stat().st_mtime >= max(s.stat().st_mtime for s in sources):
        for name in ("index.html", "style.css"):
            if (WEB / "dist" / name).read_bytes() != (WEB / name).read_bytes():
                break
        else:
            return
    subprocess.run([str(WEB / "build")], check=True, cwd=REPO_ROOT)


@pytest.fixture(scope="module")
def browser(cluster: LocalCluster) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: run deploy/local/tools.sh chromium")
    build_web()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


def app_url(cluster: LocalCluster, query: str = "") -> str:
    return f"http://127.0.0.1:{cluster.config.ports.edge}/app/{query}"


def sign_in(page: Page, user: str) -> None:
    page.get_by_test_id("login-name").fill(user)
    page.get_by_test_id("login-submit").click()


def open_page(browser: Browser, cluster: LocalCluster, user: str, query: str = "") -> Page:
    """A new browser profile with ``user`` signed in and online."""
    page = browser.new_context(viewport={"width": 1000, "height": 700}).new_page()
    page.on("pageerror", lambda e: print(f"[{user}] page error: {e}"))
    page.goto(app_url(cluster, query))
    sign_in(page, user)
    expect_online(page)
    return page


def expect_online(page: Page, timeout_ms: float = RECOVER_MS) -> None:
    expect(page.get_by_test_id("conn-state")).to_have_attribute(
        "data-state", "online", timeout=timeout_ms
    )


def gateway_of(page: Page) -> str:
    return page.get_by_test_id("gateway").inner_text()


# A handshake without a token: refused by a gateway, it still takes a turn
# of the edge's round robin.
_SHIFT_ROUND_ROBIN = """() => new Promise((done) => {
    const ws = new WebSocket(`ws://${location.host}/`);
    ws.onclose = () => done(null);
})"""


def on_gateway(page: Page, prefix: str, tries: int = 8) -> None:
    """Reconnects until the edge's round robin places the page on the gateway
    named ``prefix...``. A reload may take one turn or two (what else
    connects meanwhile), so every other try first takes one more."""
    for attempt in range(tries):
        if gateway_of(page).startswith(prefix):
            return
        if attempt % 2:
            page.evaluate(_SHIFT_ROUND_ROBIN)
        page.reload()
        expect_online(page)
    raise AssertionError(f"never placed on {prefix}: last {gateway_of(page)}")


def open_chat_with(page: Page, user: str) -> None:
    page.get_by_test_id("new-chat-user").fill(user)
    page.get_by_test_id("new-chat-open").click()


def open_conversation(page: Page, name: str) -> None:
    page.locator(f'[data-testid="conversation"][data-name="{name}"]').click()
    expect(page.get_by_test_id("chat-title")).to_have_text(name)


def send(page: Page, text: str) -> None:
    page.get_by_test_id("composer").fill(text)
    page.get_by_test_id("send").click()


def expect_texts(page: Page, texts: list[str], timeout_ms: float = RECOVER_MS) -> None:
    """Exactly these message texts, in this order: nothing lost, nothing twice."""
    locator = page.locator('[data-testid="messages"] li:not(.system) [data-testid="message-text"]')
    expect(locator).to_have_text(texts, timeout=timeout_ms)


def expect_all_ticks(page: Page, state: str, count: int, timeout_ms: float = RECOVER_MS) -> None:
    ticks = page.locator('[data-testid="messages"] [data-testid="tick"]')
    expect(ticks).to_have_count(count, timeout=timeout_ms)
    for i in range(count):
        expect(ticks.nth(i)).to_have_attribute("data-state", state, timeout=timeout_ms)


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def png(width: int, height: int) -> bytes:
    """A small valid PNG of one colour: real image bytes for the upload path."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + b"\x20\x80\xe0" * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


GATEWAY_ID = re.compile(r"^gw\d+-")
