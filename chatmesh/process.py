"""What every service process does besides its own work.

It listens at once, unready: the ops endpoint (``/healthz``, ``/readyz``,
``/metrics``) and the gRPC server with health NOT_SERVING. It becomes ready
when its start-up steps are done and its dependencies answer, and follows
them from then on. It never exits because a dependency is down.
"""

from __future__ import annotations

import asyncio
from typing import Any

from chatmesh.grpc_server import GrpcServer, wait_for_termination_signal
from chatmesh.ops_http import OpsServer
from chatmesh.readiness import Readiness
from chatmesh.tasks import TaskGroup


class ProcessShell:
    def __init__(
        self, ops_listen: str, readiness: Readiness, grpc_server: GrpcServer | None
    ) -> None:
        self.readiness = readiness
        self.grpc_server = grpc_server
        self.ops = OpsServer(ops_listen, readiness)
        self._tasks = TaskGroup("process")

    async def listen(self) -> None:
        """Binds the ops endpoint and the gRPC server, both reporting unready."""
        await self.ops.start()
        if self.grpc_server is not None:
            await self.grpc_server.start()
            self.readiness.on_change(self.grpc_server.set_serving)
        self._tasks.forever("readiness", self.readiness.run())

    async def started(self) -> None:
        await self.readiness.started()

    async def drain(self) -> None:
        if self.grpc_server is not None:
            await self.grpc_server.drain()

    async def stop(self, grace_s: float) -> None:
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace_s)
        await self._tasks.close()
        await self.ops.stop()


async def until_terminated_or(work: asyncio.Future[Any]) -> bool:
    """Waits for SIGTERM/SIGINT or for ``work`` to finish; True if terminated."""
    terminated = asyncio.ensure_future(wait_for_termination_signal())
    done, _ = await asyncio.wait({terminated, work}, return_when=asyncio.FIRST_COMPLETED)
    if terminated in done:
        return True
    terminated.cancel()
    return False
