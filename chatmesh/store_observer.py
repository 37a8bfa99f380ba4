"""Timing, counting failures of, and tracing every call to a backing store.

``observed(store, ...)`` stands in for a store object, whatever its
interface: each of its coroutine methods is timed into
``chatmesh_store_operation_seconds{store, operation}``, a call that raises
counts in ``chatmesh_store_operation_errors_total``, and, when tracing, the
call is a client span named ``"<store> <component>.<method>"`` under the
current one. Everything else (attributes, plain methods, context managers)
is the store's own, untouched. Like every call, a store operation made
outside any trace (a recovery round, say), or in one not sampled, makes no
span: an OpenTelemetry span costs tens of microseconds of CPU in Python.

Like an interceptor, it keeps the stores free of instrumentation, and it
wraps the store below any cache, so what it measures is trips to the store.
A method is wrapped on first use and kept, so a call costs a clock read, a
histogram observation and, when tracing, a span: nothing is built per call.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from opentelemetry.trace import SpanKind

from chatmesh import metrics
from chatmesh.tracing import Tracing, in_recorded_trace

T = TypeVar("T")


def observed(inner: T, *, store: str, component: str, tracing: Tracing) -> T:
    """``inner`` with its coroutine methods observed. ``store`` names the
    backend (``cassandra``, ``postgresql``, ``redis``), ``component`` the part
    of it this object uses (``messages``, ``claims``, ``directory``)."""
    return cast(T, _Observed(inner, store, component, tracing))


class _Observed:
    def __init__(self, inner: object, store: str, component: str, tracing: Tracing) -> None:
        self._observed_inner = inner
        self._observed_store = store
        self._observed_component = component
        self._observed_tracing = tracing

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._observed_inner, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(attribute):
            return attribute
        wrapped = _wrap(
            attribute,
            self._observed_store,
            f"{self._observed_component}.{name}",
            self._observed_tracing,
        )
        # Found by ordinary lookup from now on; __getattr__ is not asked again.
        self.__dict__[name] = wrapped
        return wrapped

    def __repr__(self) -> str:
        return f"observed({self._observed_inner!r})"


Method = Callable[..., Awaitable[Any]]


def _wrap(method: Method, store: str, operation: str, tracing: Tracing) -> Method:
    seconds = metrics.STORE_SECONDS.labels(store, operation)
    errors = metrics.STORE_ERRORS.labels(store, operation)

    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        except Exception:
            errors.inc()
            raise
        finally:
            seconds.observe(time.perf_counter() - started)

    if not tracing.enabled:
        return timed
    tracer = tracing.tracer
    name = f"{store} {operation}"
    attributes = {"db.system": store, "db.operation": operation}

    async def traced(*args: Any, **kwargs: Any) -> Any:
        if not in_recorded_trace():
            return await timed(*args, **kwargs)  # outside a trace, or one not sampled
        with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
            return await timed(*args, **kwargs)

    return traced
