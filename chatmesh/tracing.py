"""Traces: OpenTelemetry spans, exported over OTLP/gRPC when a collector is named.

Tracing is on when ``CHATMESH_OTLP_ENDPOINT`` or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (``http://collector:4317``; an
``https`` address is reached over TLS). Otherwise ``Tracing.enabled`` is
False, and instrumented code, which asks once when it is built, takes a path
that touches no OpenTelemetry object: what is not traced costs nothing per
message.

Spans leave the process in batches from the SDK's background thread
(``BatchSpanProcessor``): a collector that is slow or down loses spans and
never holds up a request. Sampling follows the standard ``OTEL_TRACES_SAMPLER``
settings; by default every trace is kept, or what its parent decided.

Context crosses processes as W3C trace context: in gRPC metadata for unary
calls (``chatmesh.rpc_observability``), and in the ``InboundFrame`` envelope
for client frames, which share a few long-lived gateway streams.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

ENDPOINT_VARIABLES = ("CHATMESH_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
# Spans still queued at shutdown get this long to reach the collector.
SHUTDOWN_FLUSH_MS = 5_000

_W3C = TraceContextTextMapPropagator()


class Tracing:
    """This process's tracer, and whether it records anything."""

    def __init__(self, tracer: trace.Tracer, provider: TracerProvider | None) -> None:
        self.tracer = tracer
        self._provider = provider

    @classmethod
    def off(cls) -> Tracing:
        return cls(trace.NoOpTracer(), None)

    @classmethod
    def exporting(cls, endpoint: str, *, service: str, instance: str = "") -> Tracing:
        """Spans of ``service`` sent to the OTLP/gRPC collector at ``endpoint``."""
        attributes = {SERVICE_NAME: service}
        if instance:
            attributes[SERVICE_INSTANCE_ID] = instance
        provider = TracerProvider(resource=Resource.create(attributes))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        return cls(provider.get_tracer("chatmesh"), provider)

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, service: str, instance: str = "") -> Tracing:
        for name in ENDPOINT_VARIABLES:
            endpoint = env.get(name, "")
            if endpoint:
                return cls.exporting(endpoint, service=service, instance=instance)
        return cls.off()

    @property
    def enabled(self) -> bool:
        return self._provider is not None

    def shutdown(self) -> None:
        """Sends the spans still queued, then stops. Blocks: call it from a thread."""
        if self._provider is not None:
            self._provider.force_flush(SHUTDOWN_FLUSH_MS)
            self._provider.shutdown()


NO_TRACING = Tracing.off()


def carrier_of(context: Context | None = None) -> dict[str, str]:
    """The W3C headers (``traceparent``, maybe ``tracestate``) naming the
    span current in ``context`` (default: the current context)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context)
    return carrier


def in_recorded_trace() -> bool:
    """Whether the current span belongs to a trace that is recorded. Asks
    the span's context, not the span: routing runs after the span of its
    frame has ended and still belongs to its trace."""
    context = trace.get_current_span().get_span_context()
    return context.is_valid and context.trace_flags.sampled


def sampled(traceparent: str) -> bool:
    """Whether a W3C ``traceparent`` says its trace is recorded (the sampled
    flag, the lowest bit of its last field). Read before making any span: a
    span whose trace is not recorded still costs microseconds to make."""
    try:
        return bool(int(traceparent[-2:], 16) & 1)
    except ValueError:
        return False


def context_of(traceparent: str, tracestate: str = "") -> Context:
    """The remote parent that W3C headers name; an empty context if they name none."""
    carrier = {TRACEPARENT: traceparent}
    if tracestate:
        carrier[TRACESTATE] = tracestate
    return _W3C.extract(carrier)
