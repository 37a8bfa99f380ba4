"""The gateway's streams to msgsvc answer every frame, across msgsvc restarts.

A real gRPC server in a process of its own stands in for msgsvc's
``Connect``: it answers each frame with a frame naming its request. It is
killed with SIGKILL while the streams sit idle, and comes back on the same
port while the gateway keeps trying to reconnect; then more frames come.
Every frame must be answered exactly once: by the server, or by an
UNAVAILABLE error the client resends on. gRPC may leave a dead call's
request iterator waiting; it must not take the first frames after the
reconnect into a call that no longer exists.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from chatmesh.devcluster import free_port
from chatmesh.grpc_server import CLIENT_OPTIONS
from chatmesh.v1 import client_pb2, message_service_pb2, message_service_pb2_grpc
from gateway.upstream import MsgsvcLink

FRAMES = 40


class EchoMsgsvc(message_service_pb2_grpc.MessageServiceServicer):
    async def Connect(
        self,
        request_iterator: AsyncIterator[message_service_pb2.ConnectRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[message_service_pb2.ConnectResponse]:
        async for request in request_iterator:
            if request.frames:
                yield message_service_pb2.ConnectResponse(
                    frames=[
                        message_service_pb2.OutboundFrame(
                            in_reply_to=f.seq,
                            connection_id=f.connection_id,
                            frame=client_pb2.ServerFrame(
                                error=client_pb2.ErrorFrame(request_id=f.frame.request_id)
                            ),
                        )
                        for f in request.frames
                    ]
                )


def serve(port: int) -> subprocess.Popen[bytes]:
    """The echo server as its own process, ready when it accepts connections."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.test_gateway_upstream", str(port)],
        cwd=Path(__file__).resolve().parents[2],
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()
    raise TimeoutError("echo server did not start")


async def _serve_forever(port: int) -> None:
    server = grpc.aio.server()
    message_service_pb2_grpc.add_MessageServiceServicer_to_server(EchoMsgsvc(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def test_every_frame_is_answered_once_across_a_restart() -> None:
    port = free_port()
    server = serve(port)
    answers: Counter[str] = Counter()
    answered = asyncio.Event()

    def on_reply(_connection_id: str, frame: client_pb2.ServerFrame) -> None:
        answers.update([frame.error.request_id])
        answered.set()

    link = MsgsvcLink(
        # Plaintext: this echo server tests reconnection, not the mesh's TLS.
        grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CLIENT_OPTIONS),
        "gw-test",
        on_reply,
        streams=2,
    )
    await link.start(timeout_s=5)

    def submit(i: int) -> None:
        frame = client_pb2.ClientFrame(request_id=f"r{i}", ping=client_pb2.PingFrame())
        link.submit(f"conn-{i % 7}", "u", "d", frame)

    try:
        for i in range(FRAMES // 4):
            submit(i)
        await asyncio.sleep(1.0)  # the streams sit idle, waiting for frames
        server.kill()
        server.wait()
        await asyncio.sleep(1.0)  # down while the streams fail and retry
        server = serve(port)
        await asyncio.sleep(1.5)  # the streams are up again
        for i in range(FRAMES // 4, FRAMES):
            submit(i)
        expected = {f"r{i}" for i in range(FRAMES)}
        deadline = asyncio.get_running_loop().time() + 15
        while set(answers) != expected:
            answered.clear()
            left = deadline - asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(answered.wait(), max(left, 0.01))
            except TimeoutError:
                break
        assert sorted(expected - set(answers)) == [], "frames never answered"
        assert all(n == 1 for n in answers.values()), answers
    finally:
        await link.close()
        server.kill()
        server.wait()


if __name__ == "__main__":
    asyncio.run(_serve_forever(int(sys.argv[1])))
