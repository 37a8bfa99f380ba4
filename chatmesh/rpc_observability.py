"""Every gRPC call counted and timed, and traces carried across calls.

``ObservingInterceptor`` sits outermost on every server: it counts each call
by method and status code (refusals of the authorization interceptor
included) and times unary calls. When tracing, it continues the caller's
trace, named by the ``traceparent`` metadata, in a server span around each
unary call. Streams are counted when they end and not traced as a whole: a
gateway's ``Connect`` stream lives for hours, and each frame on it carries
its own trace context instead.

``TracingClientInterceptor`` is the other half: a client span around each
unary call made within a trace, its context sent as ``traceparent``
metadata. Channels get it only when tracing is on.

Traces begin where a client's frame enters the gateway. A call made outside
any trace (a gateway heartbeat, a recovery round) is not traced, so
background chatter adds no traces of its own; an internal client that wants
its call traced sends a ``traceparent``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from chatmesh import metrics
from chatmesh.grpc_handlers import with_behaviour
from chatmesh.tracing import (
    TRACEPARENT,
    TRACESTATE,
    Tracing,
    carrier_of,
    context_of,
    in_recorded_trace,
    sampled,
)

# The codes that mean the server failed, not the caller (OpenTelemetry's
# gRPC conventions): only these mark a server span as an error.
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class _MethodMetrics:
    """One method's label children, looked up once per method, not per call."""

    def __init__(self, full_method: str) -> None:
        service, _, method = full_method.lstrip("/").partition("/")
        self._service = service
        self._method = method
        self.seconds = metrics.RPC_SECONDS.labels(service, method)
        self._handled: dict[grpc.StatusCode, Any] = {}

    def handled(self, code: grpc.StatusCode) -> None:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = metrics.RPCS_HANDLED.labels(
                self._service, self._method, code.name
            )
        child.inc()


def _final_code(
    context: grpc.aio.ServicerContext, failure: BaseException | None
) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code  # set by abort() or set_code()
    if failure is None:
        return grpc.StatusCode.OK
    if isinstance(failure, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED  # the caller went away
    return grpc.StatusCode.UNKNOWN  # what gRPC answers for an escaped exception


def _end_server_span(span: Span, code: grpc.StatusCode) -> None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in _SERVER_FAULTS:
        span.set_status(Status(StatusCode.ERROR, code.name))


class ObservingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # untyped base
    def __init__(self, tracing: Tracing) -> None:
        self._tracing = tracing
        self._methods: dict[str, _MethodMetrics] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        observed = self._methods.get(method)
        if observed is None:
            observed = self._methods[method] = _MethodMetrics(method)
        if handler.unary_unary is not None:
            parent = _remote_parent(handler_call_details) if self._tracing.enabled else None
            behaviour = (
                _timed_unary(handler.unary_unary, observed)
                if parent is None
                else self._traced_unary(handler.unary_unary, observed, method, parent)
            )
            return with_behaviour(handler, behaviour)
        if handler.unary_stream is not None:
            return with_behaviour(handler, _counted_stream(handler.unary_stream, observed))
        if handler.stream_stream is not None:
            return with_behaviour(handler, _counted_stream(handler.stream_stream, observed))
        return with_behaviour(handler, _timed_unary(handler.stream_unary, observed))

    def _traced_unary(
        self,
        inner: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
        observed: _MethodMetrics,
        method: str,
        parent: Context,
    ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        name = method.lstrip("/")
        tracer = self._tracing.tracer
        timed = _timed_unary(inner, observed)

        async def traced(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with tracer.start_as_current_span(
                name,
                context=parent,
                kind=SpanKind.SERVER,
                attributes={"rpc.system": "grpc", "rpc.method": name},
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                failure: BaseException | None = None
                try:
                    return await timed(request, context)
                except BaseException as exc:
                    failure = exc
                    raise
                finally:
                    _end_server_span(span, _final_code(context, failure))

        return traced


def _timed_unary(
    inner: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]], observed: _MethodMetrics
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    async def timed(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        failure: BaseException | None = None
        try:
            return await inner(request, context)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            observed.seconds.observe(time.perf_counter() - started)
            observed.handled(_final_code(context, failure))

    return timed


def _counted_stream(
    inner: Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]], observed: _MethodMetrics
) -> Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]:
    async def counted(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        failure: BaseException | None = None
        try:
            async for response in inner(request, context):
                yield response
        except BaseException as exc:
            failure = exc
            raise
        finally:
            observed.handled(_final_code(context, failure))

    return counted


def _remote_parent(details: grpc.HandlerCallDetails) -> Context | None:
    traceparent = tracestate = ""
    for key, value in details.invocation_metadata or ():
        if key == TRACEPARENT:
            traceparent = value
        elif key == TRACESTATE:
            tracestate = value
    return context_of(traceparent, tracestate) if sampled(traceparent) else None


class TracingClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # untyped base
    def __init__(self, tracing: Tracing) -> None:
        self._tracer = tracing.tracer

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        if not in_recorded_trace():
            # Outside a trace, or in one not sampled: the callee records nothing either.
            return await continuation(client_call_details, request)
        method = client_call_details.method
        name = (method.decode() if isinstance(method, bytes) else str(method)).lstrip("/")
        with self._tracer.start_as_current_span(
            name,
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.method": name},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()))
            for key, value in carrier_of().items():
                metadata.add(key, value)
            call = await continuation(client_call_details._replace(metadata=metadata), request)
            code: grpc.StatusCode = await call.code()  # waits for the end; never raises
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            if code != grpc.StatusCode.OK:
                span.set_status(Status(StatusCode.ERROR, code.name))
            return call


def client_interceptors(tracing: Tracing) -> list[grpc.aio.ClientInterceptor]:
    """What a channel to one of our services carries: nothing unless tracing."""
    return [TracingClientInterceptor(tracing)] if tracing.enabled else []
