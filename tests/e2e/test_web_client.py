"""The web chat page (web/) in a real Chromium against the local cluster.

Each test opens one browser profile per user through the edge, as a person
would: pick a name, chat. What they check is what a person sees: messages
once each and in order, ticks, read counts, typing, presence, images, and
the connection banner through crashes, expired tokens and an edge that is
down. Screenshots land in test-artifacts/web/.
"""

from __future__ import annotations

from playwright.sync_api import Browser, WebSocketRoute, expect

from chatmesh.devcluster import LocalCluster
from msgsvc.typing_activity import TTL_MS as TYPING_TTL_MS
from tests.conftest import unique
from tests.e2e.web_page import (
    GATEWAY_ID,
    RECOVER_MS,
    app_url,
    browser,
    expect_all_ticks,
    expect_online,
    expect_texts,
    gateway_of,
    on_gateway,
    open_chat_with,
    open_conversation,
    open_page,
    png,
    screenshot,
    send,
    sign_in,
)

__all__ = ["browser"]  # the fixture, imported for pytest

# A ServerFrame field no version of the page knows (field 99, varint 1): a
# newer server's frame kind.
UNKNOWN_SERVER_FRAME = bytes([0x98, 0x06, 0x01])


def test_two_users_chat_across_gateways_and_ticks_turn_read(
    browser: Browser, cluster: LocalCluster
) -> None:
    alice, bob = unique("alice"), unique("bob")
    a = open_page(browser, cluster, alice)
    b = open_page(browser, cluster, bob)
    assert GATEWAY_ID.match(gateway_of(a))
    on_gateway(b, "gw2-" if gateway_of(a).startswith("gw1-") else "gw1-")
    assert gateway_of(a)[:4] != gateway_of(b)[:4]

    open_chat_with(a, bob)
    send(a, "hi bob")
    expect_texts(a, ["hi bob"])
    # Bob is online, so his page reports the delivery: two ticks.
    expect_all_ticks(a, "delivered", 1)
    expect(b.get_by_test_id("unread-count")).to_have_text("1")
    expect(b.get_by_test_id("conversation-last")).to_contain_text("hi bob")
    open_conversation(b, alice)
    expect_texts(b, ["hi bob"])
    expect_all_ticks(a, "read", 1)
    expect(b.get_by_test_id("unread-count")).to_have_count(0)

    expect(a.get_by_test_id("presence")).to_contain_text(f"{bob}: online")
    b.get_by_test_id("composer").press_sequentially("hello al", delay=20)
    expect(a.get_by_test_id("typing")).to_have_text(f"{bob} is typing…")
    b.get_by_test_id("send").click()
    expect_texts(a, ["hi bob", "hello al"])
    expect(a.get_by_test_id("typing")).to_have_text("")
    expect_all_ticks(b, "read", 1)
    screenshot(a, "chat-alice")
    screenshot(b, "chat-bob")
    # Bob's tab goes away mid-word: no stop is ever sent, and the indicator
    # still ends by itself once its time to live runs out.
    b.get_by_test_id("composer").press_sequentially("one more", delay=20)
    expect(a.get_by_test_id("typing")).to_have_text(f"{bob} is typing…")
    b.context.close()
    expect(a.get_by_test_id("typing")).to_have_text("", timeout=TYPING_TTL_MS + 2_000)
    expect(a.get_by_test_id("presence")).to_contain_text(f"{bob}: last seen", timeout=RECOVER_MS)
    a.context.close()


def test_gateway_crash_loses_and_duplicates_nothing(
    browser: Browser, cluster: LocalCluster
) -> None:
    alice, bob = unique("alice"), unique("bob")
    a = open_page(browser, cluster, alice)
    b = open_page(browser, cluster, bob)
    on_gateway(a, "gw1-")
    open_chat_with(a, bob)
    send(a, "before 1")
    expect_texts(a, ["before 1"])
    open_conversation(b, alice)

    texts = ["before 1"]
    cluster.processes["gateway-1"].kill()
    try:
        for i in range(1, 6):
            texts.append(f"during {i}")
            send(a, texts[-1])
    finally:
        cluster.restart("gateway-1")
    for i in range(1, 3):
        texts.append(f"after {i}")
        send(a, texts[-1])
    expect_online(a)
    expect_texts(a, texts)
    expect_all_ticks(a, "read", len(texts))
    expect_texts(b, texts)
    # A reload reads everything back from the server: still each once.
    b.reload()
    expect_online(b)
    open_conversation(b, alice)
    expect_texts(b, texts)
    screenshot(a, "gateway-crash-alice")
    a.context.close()
    b.context.close()


def test_group_of_three_counts_reads_and_changes_members(
    browser: Browser, cluster: LocalCluster
) -> None:
    alice, bob, carol = unique("alice"), unique("bob"), unique("carol")
    a, b, c = (open_page(browser, cluster, u) for u in (alice, bob, carol))
    a.get_by_test_id("group-title").fill("Trip")
    a.get_by_test_id("group-members-input").fill(f"{bob}, {carol}")
    a.get_by_test_id("group-create").click()
    expect(a.get_by_test_id("chat-title")).to_have_text("Trip")
    expect(a.get_by_test_id("member")).to_have_count(3)
    send(a, "who is in?")
    expect(a.get_by_test_id("read-count")).to_have_text("read by 0 of 2", timeout=RECOVER_MS)

    open_conversation(b, "Trip")
    expect_texts(b, ["who is in?"])
    expect(a.get_by_test_id("read-count")).to_have_text("read by 1 of 2", timeout=RECOVER_MS)
    open_conversation(c, "Trip")
    expect(a.get_by_test_id("read-count")).to_have_text("read by 2 of 2", timeout=RECOVER_MS)
    expect_all_ticks(a, "read", 1)
    screenshot(a, "group-alice")

    a.locator(f'[data-testid="member-remove"][data-user="{carol}"]').click()
    expect(a.get_by_test_id("member")).to_have_count(2)
    # Carol's page hears of it from the change's delivery and a list refresh.
    expect(c.locator('[data-testid="conversation"][data-name="Trip"]')).to_have_count(
        0, timeout=RECOVER_MS
    )
    a.get_by_test_id("member-add-input").fill(carol)
    a.get_by_test_id("member-add").click()
    expect(a.get_by_test_id("member")).to_have_count(3)
    expect(c.locator('[data-testid="conversation"][data-name="Trip"]')).to_have_count(
        1, timeout=RECOVER_MS
    )
    for page in (a, b, c):
        page.context.close()


def test_image_upload_shows_on_the_other_side(browser: Browser, cluster: LocalCluster) -> None:
    alice, bob = unique("alice"), unique("bob")
    a = open_page(browser, cluster, alice)
    b = open_page(browser, cluster, bob)
    open_chat_with(a, bob)
    send(a, "a picture follows")
    expect_texts(a, ["a picture follows"])
    a.get_by_test_id("attach").set_input_files(
        files=[{"name": "dot.png", "mimeType": "image/png", "buffer": png(40, 30)}]
    )
    expect(a.get_by_test_id("upload-status")).to_have_text("", timeout=RECOVER_MS)
    open_conversation(b, alice)
    image = b.get_by_test_id("message-image")
    expect(image).to_have_attribute("data-loaded", "true", timeout=RECOVER_MS)
    assert image.evaluate("img => img.naturalWidth") == 40
    expect(a.get_by_test_id("message-image")).to_have_attribute("data-loaded", "true")
    screenshot(b, "image-bob")
    a.context.close()
    b.context.close()


def test_expired_token_is_renewed_without_losing_sends(
    browser: Browser, cluster: LocalCluster
) -> None:
    alice, bob = unique("alice"), unique("bob")
    b = open_page(browser, cluster, bob)
    # Two-second tokens: the gateway closes each connection (4002) soon after
    # it opens, and the page must fetch another token each time.
    a = open_page(browser, cluster, alice, "?ttl=2")
    open_chat_with(a, bob)
    closes: list[str] = []
    a.on("websocket", lambda ws: ws.on("close", lambda _: closes.append("closed")))
    for i in range(1, 5):
        send(a, f"short-lived {i}")
        a.wait_for_timeout(900)
    expect_all_ticks(a, "delivered", 4)
    assert closes, "no connection was closed for its expired token"
    expect_online(a)
    open_conversation(b, alice)
    expect_texts(b, [f"short-lived {i}" for i in range(1, 5)])
    a.context.close()
    b.context.close()


def test_edge_down_at_load_shows_retrying_and_the_outbox_survives_a_reload(
    browser: Browser, cluster: LocalCluster
) -> None:
    alice, bob = unique("alice"), unique("bob")
    b = open_page(browser, cluster, bob)  # registered, and then cut off too
    context = browser.new_context()
    a = context.new_page()
    a.goto(app_url(cluster))
    cluster.processes["envoy"].stop()
    try:
        sign_in(a, alice)
        banner = a.get_by_test_id("conn-state")
        expect(banner).to_have_attribute("data-state", "offline", timeout=RECOVER_MS)
        expect(banner).to_contain_text("can't reach the server")
        open_chat_with(a, bob)
        send(a, "sent while the edge was down")
        expect(a.locator('[data-testid="tick"][data-state="pending"]')).to_have_count(1)
        screenshot(a, "edge-down")
        # The tab goes away with the send only in its outbox (localStorage).
        a.close()
    finally:
        cluster.restart("envoy")
    a = context.new_page()
    a.goto(app_url(cluster))
    expect_online(a)
    expect_online(b)
    open_conversation(b, alice)
    expect_texts(b, ["sent while the edge was down"])
    context.close()
    b.context.close()


def test_unknown_server_frame_is_ignored(browser: Browser, cluster: LocalCluster) -> None:
    alice, bob = unique("alice"), unique("bob")
    b = open_page(browser, cluster, bob)
    context = browser.new_context()
    a = context.new_page()

    def relay(client: WebSocketRoute) -> None:
        server = client.connect_to_server()
        client.on_message(lambda m: server.send(m))

        def from_server(message: str | bytes) -> None:
            client.send(message)
            # After every frame from the server, one of a kind from the future.
            client.send(UNKNOWN_SERVER_FRAME)

        server.on_message(from_server)

    a.route_web_socket(lambda url: "access_token=" in url, relay)
    errors: list[str] = []
    a.on("pageerror", lambda e: errors.append(str(e)))
    a.goto(app_url(cluster))
    sign_in(a, alice)
    expect_online(a)
    open_chat_with(a, bob)
    send(a, "still fine")
    expect_all_ticks(a, "delivered", 1)
    open_conversation(b, alice)
    expect_texts(b, ["still fine"])
    assert errors == []
    context.close()
    b.context.close()
