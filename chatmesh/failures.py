"""Classifying failures of the backing stores into the error vocabulary."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import asyncpg
import cassandra
import cassandra.cluster
import grpc
import redis.exceptions

from chatmesh.errors import ChatmeshError, Unavailable, grpc_status
from chatmesh.grpc_handlers import with_behaviour

log = logging.getLogger(__name__)

_STORE_FAILURES: tuple[type[BaseException], ...] = (
    cassandra.DriverException,
    cassandra.RequestExecutionException,
    cassandra.cluster.NoHostAvailable,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    # A Redis Cluster mid-failover: the slot's primary is down or not yet
    # replaced (CLUSTERDOWN, TRYAGAIN, a write reaching a demoted primary,
    # a slot no node serves).
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.SlotNotCoveredError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    ConnectionError,
    TimeoutError,
    OSError,
)


def classify(exc: BaseException) -> ChatmeshError | None:
    """The client-facing error for a failure, or None for a bug."""
    if isinstance(exc, ChatmeshError):
        return exc
    if isinstance(exc, _STORE_FAILURES):
        # Safe to retry: sends are idempotent by client_msg_id.
        return Unavailable("STORE_UNAVAILABLE", "a backing store is unavailable; retry")
    return None


async def abort_with(context: grpc.aio.ServicerContext, exc: Exception) -> NoReturn:
    """Ends a unary call with the status for ``exc``: its own for a
    ``ChatmeshError``, UNAVAILABLE for a store failure, and a logged INTERNAL
    (no details leak to the caller) for anything else."""
    error = classify(exc)
    if error is None:
        log.error("request failed", exc_info=exc)
        error = ChatmeshError("INTERNAL", "internal error")
    await context.abort_with_status(grpc_status(error))
    raise AssertionError("abort_with_status returned")  # it raises to end the call


class StoreFailureInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # untyped base
    """Gives unary handlers that let a store failure escape the error
    vocabulary's answer (UNAVAILABLE / STORE_UNAVAILABLE, safe to retry)
    instead of gRPC's UNKNOWN. Handlers that map their own errors, and
    streaming methods, are left as they are."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await inner(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                error = classify(exc)
                if error is None:
                    raise  # a bug: gRPC logs it and answers UNKNOWN
                await context.abort_with_status(grpc_status(error))

        return with_behaviour(handler, guarded)
