"""A tiny interactive client, for sending a first message by hand.

    python -m chatmesh.client alice phone            # connects through Envoy
    > @bob hello there                               # sends to user bob
    > #<conversation_id> hi all                      # sends to a conversation

Every frame received is printed as protobuf JSON. Uses the local signing key
(.local/keys) to mint its own token, as a login service would.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from pathlib import Path

from websockets.asyncio.client import connect

from chatmesh.auth import Identity, TokenIssuer
from chatmesh.clock import SystemClock
from chatmesh.errors import ChatmeshError
from chatmesh.frames import (
    Encoding,
    decode_server_frame,
    encode_client_frame,
    encode_server_frame,
)
from chatmesh.provisioning import register_device
from chatmesh.settings import DEFAULT_PG_DSN, env_str
from chatmesh.v1 import client_pb2, common_pb2


def parse_line(line: str) -> client_pb2.ClientFrame | None:
    target, _, text = line.strip().partition(" ")
    if len(target) < 2 or target[0] not in "@#" or not text:
        return None
    send = client_pb2.SendFrame(
        client_msg_id=uuid.uuid4().hex, kind=common_pb2.MESSAGE_KIND_TEXT, body=text.encode()
    )
    if target[0] == "@":
        send.to_user_id = target[1:]
    else:
        send.conversation_id = target[1:]
    return client_pb2.ClientFrame(request_id=uuid.uuid4().hex[:8], send=send)


async def chat(url: str, token: str) -> None:
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:

        async def show() -> None:
            async for data in ws:
                frame = decode_server_frame(data)
                print(f"< {encode_server_frame(frame, Encoding.JSON)!s}", flush=True)

        printer = asyncio.create_task(show())
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            frame = parse_line(line)
            if frame is None:
                print("usage: @user text | #conversation text", file=sys.stderr)
                continue
            await ws.send(encode_client_frame(frame, Encoding.JSON))
        printer.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m chatmesh.client")
    parser.add_argument("user_id")
    parser.add_argument("device_id")
    parser.add_argument("--url", default="ws://127.0.0.1:8080/")
    parser.add_argument("--key", default=".local/cluster/keys/jwt-private.pem")
    args = parser.parse_args()
    issuer = TokenIssuer(Path(args.key).read_bytes(), SystemClock())
    # As `python -m chatmesh mint-token` does: only registered devices may send.
    try:
        asyncio.run(
            register_device(
                env_str(os.environ, "PG_DSN", DEFAULT_PG_DSN), args.user_id, args.device_id
            )
        )
    except ChatmeshError as exc:
        sys.exit(f"{exc.reason}: {exc.message}")
    token = issuer.mint(Identity(args.user_id, args.device_id), ttl_s=3600)
    asyncio.run(chat(args.url, token))


if __name__ == "__main__":
    main()
