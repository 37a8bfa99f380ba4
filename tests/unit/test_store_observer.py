"""Stores stand in observed: timed, failures counted, spans within a trace only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, use_span
from prometheus_client import REGISTRY

from chatmesh.store_observer import observed
from chatmesh.tracing import NO_TRACING, Tracing


class Store:
    name = "plain attribute"

    async def read(self, key: str) -> str:
        return key.upper()

    async def fail(self) -> None:
        raise ConnectionError("down")

    def sync_helper(self) -> int:
        return 7


def _sample(metric: str, operation: str) -> float:
    value = REGISTRY.get_sample_value(metric, {"store": "teststore", "operation": operation})
    return value or 0.0


async def test_calls_pass_through_timed_and_failures_counted() -> None:
    store = observed(Store(), store="teststore", component="things", tracing=NO_TRACING)
    before = _sample("chatmesh_store_operation_seconds_count", "things.read")
    failed_before = _sample("chatmesh_store_operation_errors_total", "things.fail")

    assert await store.read("a") == "A"
    assert await store.read("b") == "B"
    with pytest.raises(ConnectionError):
        await store.fail()

    assert _sample("chatmesh_store_operation_seconds_count", "things.read") == before + 2
    assert _sample("chatmesh_store_operation_errors_total", "things.fail") == failed_before + 1
    # Not coroutines: the store's own, untouched.
    assert store.name == "plain attribute"
    assert store.sync_helper() == 7


async def test_store_calls_are_spans_only_within_a_trace() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider.get_tracer("test"), provider)
    store = observed(Store(), store="teststore", component="things", tracing=tracing)

    await store.read("outside")
    assert exporter.get_finished_spans() == ()

    with tracing.tracer.start_as_current_span("frame send") as parent:
        await store.read("inside")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    child = spans["teststore things.read"]
    assert child.parent is not None
    assert child.parent.span_id == parent.get_span_context().span_id
    assert child.attributes is not None and child.attributes["db.system"] == "teststore"


async def test_late_work_of_a_span_is_traced_unsampled_traces_are_not() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider.get_tracer("test"), provider)
    store = observed(Store(), store="teststore", component="things", tracing=tracing)

    # Routing runs in a task the frame's span started, after that span ended.
    with tracing.tracer.start_as_current_span("frame send"):
        later = asyncio.get_running_loop().create_task(asyncio.sleep(0.01))
        routing = asyncio.get_running_loop().create_task(_after(later, store.read("late")))
    await routing
    assert "teststore things.read" in {s.name for s in exporter.get_finished_spans()}

    exporter.clear()
    unsampled = NonRecordingSpan(SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(0)))
    with use_span(unsampled):
        await store.read("not sampled")
    assert exporter.get_finished_spans() == ()


async def _after(first: asyncio.Task[None], then: Awaitable[str]) -> str:
    await first
    return await then
