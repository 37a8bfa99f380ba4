"""A servicer registered before the object that serves it exists.

A ``grpc.aio`` server cannot gain services once started, yet a process
must listen (and answer health checks with NOT_SERVING) before its stores
are reachable and its domain objects can be built. ``LateServicer`` stands
in for the real servicer: every call answers UNAVAILABLE/NOT_READY, which
clients retry, until ``bind`` hands it the real one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from chatmesh.errors import Unavailable, grpc_status

_NOT_READY = Unavailable("NOT_READY", "this instance is starting; retry")


class LateServicer:
    """Has a method for every method of ``service``, forwarding to the bound
    servicer; pass it to the generated ``add_...Servicer_to_server``."""

    def __init__(self, service: ServiceDescriptor) -> None:
        self._target: object | None = None
        for method in service.methods:
            setattr(self, method.name, self._forwarder(method.name, method.server_streaming))

    def bind(self, target: object) -> None:
        self._target = target

    def _forwarder(self, name: str, server_streaming: bool) -> Callable[..., Any]:
        if server_streaming:

            async def forward_stream(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                if self._target is None:
                    await context.abort_with_status(grpc_status(_NOT_READY))
                stream: AsyncIterator[Any] = getattr(self._target, name)(request, context)
                async for response in stream:
                    yield response

            return forward_stream

        async def forward(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if self._target is None:
                await context.abort_with_status(grpc_status(_NOT_READY))
            return await getattr(self._target, name)(request, context)

        return forward
