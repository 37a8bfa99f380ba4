"""A small interactive client, for sending a first message by hand.

    python -m chatmesh.client alice phone            # connects through Envoy
    python -m chatmesh.client alice phone --url wss://127.0.0.1:8443/
                                                     # over TLS, trusting make up's edge CA
    > @bob hello there                               # sends to user bob
    > #<conversation_id> hi all                      # sends to a conversation

It is a ``chatmesh.client.Device``: it catches up on connecting, resends
until acked, reconnects by itself, and shows each message once, as a line
of text. Uses the local signing key (.local/cluster/keys) to mint its own
token, as a login service would, and registers its device through msgsvc's
DirectoryService.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
from datetime import datetime
from pathlib import Path

from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client.connection import tls_context
from chatmesh.client.device import Device
from chatmesh.client.protocol import (
    ChannelActivity,
    Event,
    FrameReceived,
    MessageAdded,
    ReceiptCountsChanged,
    SendFailed,
    SyncFinished,
    WatermarkChanged,
)
from chatmesh.clock import SystemClock
from chatmesh.frames import Encoding, encode_server_frame
from chatmesh.mesh.credentials import MeshTls
from chatmesh.provisioning import ProvisioningError, register_device
from chatmesh.settings import DEFAULT_MSGSVC_ADDR, env_str

TOKEN_TTL_S = 3600
# Where `make up` keeps the CA its TLS edge certificate is issued by.
DEFAULT_EDGE_CA_FILE = ".local/cluster/tls/edge-ca/ca.crt"
USAGE = "usage: @user text | #conversation text"


def parse_line(line: str) -> tuple[str | None, str | None, str] | None:
    """(to_user, conversation, text) from ``@user text`` or ``#conversation text``."""
    target, _, text = line.strip().partition(" ")
    if len(target) < 2 or target[0] not in "@#" or not text:
        return None
    if target[0] == "@":
        return target[1:], None, text
    return None, target[1:], text


def describe(event: Event, me: str) -> str | None:
    """One line of text for an event, or None for events not worth a line."""
    if isinstance(event, MessageAdded):
        m = event.message
        when = datetime.fromtimestamp(m.created_at_ms / 1000).strftime("%H:%M:%S")
        if event.source == "ack":
            return f"  ✓ {when} #{m.conversation_id} sent ({m.client_msg_id})"
        body = m.body.decode("utf-8", "replace")
        who = "you" if m.sender_user_id == me else m.sender_user_id
        return f"{when} #{m.conversation_id} {who} ({m.sender_device_id}): {body}"
    if isinstance(event, SendFailed):
        error = event.error
        return f"  ✗ {event.client_msg_id}: {error.reason} {error.message}"
    if isinstance(event, WatermarkChanged):
        w = event.watermark
        if w.read_message_id:
            return f"  #{w.conversation_id} read by {w.user_id} up to {w.read_message_id}"
        return f"  #{w.conversation_id} delivered to {w.user_id} up to {w.delivered_message_id}"
    if isinstance(event, ChannelActivity):
        names = ", ".join(f"#{c}" for c, _ in event.channels)
        return f"  new in {names} (open with a sync)"
    if isinstance(event, ReceiptCountsChanged):
        newest = max(event.counts, key=lambda c: c.message_id)
        return (
            f"  #{event.conversation_id} {newest.message_id}: delivered to"
            f" {newest.delivered} of {newest.recipients}, read by {newest.read}"
        )
    if isinstance(event, SyncFinished) and not event.outcome.completed:
        return f"  sync failed: {event.outcome.reason}"
    if isinstance(event, FrameReceived):
        return f"< {encode_server_frame(event.frame, Encoding.JSON)!s}"
    return None


async def chat(
    url: str, user_id: str, device_id: str, issuer: TokenIssuer, tls: ssl.SSLContext | None
) -> None:
    def show(event: Event) -> None:
        line = describe(event, user_id)
        if line is not None:
            print(line, flush=True)

    device = Device(
        user_id,
        device_id,
        url=url,
        token_factory=lambda: issuer.mint(Identity(user_id, device_id), ttl_s=TOKEN_TTL_S),
        on_event=show,
        tls=tls,
    )
    device.start()
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            parsed = parse_line(line)
            if parsed is None:
                print(USAGE, file=sys.stderr)
                continue
            to_user, conversation, text = parsed
            device.send_text(to_user=to_user, conversation=conversation, body=text)
        # Give the outbox a moment to drain before leaving.
        for _ in range(50):
            if device.outbox_empty:
                break
            await asyncio.sleep(0.1)
    finally:
        await device.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m chatmesh.client")
    parser.add_argument("user_id")
    parser.add_argument("device_id")
    parser.add_argument("--url", default="ws://127.0.0.1:8080/")
    parser.add_argument(
        "--ca-file",
        help=f"CA certificate a wss:// edge is verified by (default: {DEFAULT_EDGE_CA_FILE})",
    )
    parser.add_argument("--key", default=".local/cluster/keys/jwt-private.pem")
    parser.add_argument("--msgsvc", default=env_str(os.environ, "MSGSVC_ADDR", DEFAULT_MSGSVC_ADDR))
    parser.add_argument(
        "--mesh-tls",
        default=env_str(os.environ, "MESH_TLS_DIR", ".local/cluster/tls/client/ops"),
        help="mesh client certificate directory, for registering the device",
    )
    args = parser.parse_args()
    tls: ssl.SSLContext | None = None
    if args.url.startswith("wss://"):
        ca_file = args.ca_file or DEFAULT_EDGE_CA_FILE
        try:
            tls = tls_context(ca_file)
        except (OSError, ssl.SSLError) as exc:
            sys.exit(f"cannot trust {ca_file}: {exc}")
    elif args.ca_file:
        parser.error("--ca-file is for wss:// URLs")
    issuer = TokenIssuer(Path(args.key).read_bytes(), SystemClock())
    # As `python -m chatmesh mint-token` does: only registered devices may send.
    try:
        asyncio.run(
            register_device(MeshTls(Path(args.mesh_tls)), args.msgsvc, args.user_id, args.device_id)
        )
    except ProvisioningError as exc:
        sys.exit(str(exc))
    print(f"{args.user_id}/{args.device_id} on {args.url}. {USAGE}", flush=True)
    asyncio.run(chat(args.url, args.user_id, args.device_id, issuer, tls))


if __name__ == "__main__":
    main()
