"""``python -m chatmesh.chat alice [--edge ws://127.0.0.1:8080/] [--device tty]``

Logs in as a dev user through the local cluster's ``/dev/token`` (on the
edge's origin) and chats through the edge as a ``chatmesh.client.Device``:
it catches up on connecting, resends until acked, reconnects by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import ssl
import sys

import httpx

from chatmesh.chat.app import ChatApp
from chatmesh.chat.login import TOKEN_REFRESH_S, LoginError, fetch_token, token_url
from chatmesh.client.connection import tls_context
from chatmesh.client.device import Device
from chatmesh.client.protocol import ClientOptions
from chatmesh.conversation import is_valid_user_id

# Where `make up` keeps the CA its TLS edge certificate is issued by.
DEFAULT_EDGE_CA_FILE = ".local/cluster/tls/edge-ca/ca.crt"


class TokenSource:
    """The latest token; the Device asks for one at every connect."""

    def __init__(self, http: httpx.AsyncClient, url: str, user_id: str, device_id: str) -> None:
        self._http = http
        self._url = url
        self._user_id = user_id
        self._device_id = device_id
        self.token = ""

    async def refresh(self) -> None:
        self.token = await fetch_token(self._http, self._url, self._user_id, self._device_id)

    async def keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(TOKEN_REFRESH_S)
            try:
                await self.refresh()
            except LoginError as exc:
                print(f"! token refresh failed: {exc}", flush=True)


async def chat(edge: str, user_id: str, device_id: str, tls: ssl.SSLContext | None) -> None:
    async with httpx.AsyncClient(timeout=10, verify=tls or True) as http:
        tokens = TokenSource(http, token_url(edge), user_id, device_id)
        await tokens.refresh()
        # The app needs the device and the device the app's event handler:
        # events only flow after start, by when both exist.
        apps: list[ChatApp] = []
        device = Device(
            user_id,
            device_id,
            url=edge,
            token_factory=lambda: tokens.token,
            options=ClientOptions(mark_delivered=True),
            on_event=lambda event: apps[0].on_event(event),
            tls=tls,
        )
        apps.append(ChatApp(device, http))
        device.start()
        refresher = asyncio.get_running_loop().create_task(
            tokens.keep_fresh(), name="chat:token-refresh"
        )
        try:
            await apps[0].run()
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            await device.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m chatmesh.chat", description="Chat from a terminal as a dev user."
    )
    parser.add_argument("user_id", help="who you are (created if new)")
    parser.add_argument("--edge", default="ws://127.0.0.1:8080/", help="the edge's WebSocket URL")
    parser.add_argument("--device", default="tty", help="this device's id (default: tty)")
    parser.add_argument(
        "--ca-file",
        help=f"CA certificate a wss:// edge is verified by (default: {DEFAULT_EDGE_CA_FILE})",
    )
    args = parser.parse_args()
    if not (is_valid_user_id(args.user_id) and is_valid_user_id(args.device)):
        parser.error("user and device ids are letters, digits, '_', '.' and '-'")
    tls: ssl.SSLContext | None = None
    if args.edge.startswith("wss://"):
        ca_file = args.ca_file or DEFAULT_EDGE_CA_FILE
        try:
            tls = tls_context(ca_file)
        except (OSError, ssl.SSLError) as exc:
            sys.exit(f"cannot trust {ca_file}: {exc}")
    # Library warnings would tear through the prompt; failures show as lines of their own.
    logging.basicConfig(level=logging.CRITICAL)
    try:
        asyncio.run(chat(args.edge, args.user_id, args.device, tls))
    except LoginError as exc:
        sys.exit(f"cannot log in: {exc}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
