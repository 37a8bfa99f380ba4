"""Metrics every process shares: gRPC calls served and backing-store operations.

Metric objects live at module level in ``prometheus_client``'s default
registry, which each process's ops endpoint serves at ``/metrics``
(``chatmesh.ops_http``). Labels take values from small fixed sets (methods,
codes, stores, operations, frame kinds, error reasons), never user, device,
connection or conversation ids, so the number of series stays bounded.

On the hot path, code increments a label child looked up once (``children``)
rather than calling ``labels()`` per event, which would build a key and take
a lock for every message.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from google.protobuf.message import Message
from prometheus_client import Counter, Histogram

# Seconds: from 100 µs (a Redis round trip on a quiet host) to 2.5 s (beyond
# every store and RPC timeout we set, so the top bucket means "timed out").
LATENCY_BUCKETS_S = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

RPCS_HANDLED = Counter(
    "chatmesh_grpc_server_handled_total",
    "gRPC calls served, by service, method and status code.",
    ["service", "method", "code"],
)
RPC_SECONDS = Histogram(
    "chatmesh_grpc_server_handling_seconds",
    "Time to serve a unary gRPC call, by service and method.",
    ["service", "method"],
    buckets=LATENCY_BUCKETS_S,
)
STORE_SECONDS = Histogram(
    "chatmesh_store_operation_seconds",
    "Time of a backing-store operation, by store and operation (component.method).",
    ["store", "operation"],
    buckets=LATENCY_BUCKETS_S,
)
STORE_ERRORS = Counter(
    "chatmesh_store_operation_errors_total",
    "Backing-store operations that raised, by store and operation.",
    ["store", "operation"],
)

Metric = TypeVar("Metric", Counter, Histogram)


def children(metric: Metric, values: Iterable[str]) -> dict[str | None, Metric]:
    """The label children of a one-label metric, made up front: each value
    is exported (as zero) before it first happens, and increments skip the
    label lookup. ``None`` maps to ``"none"``."""
    made: dict[str | None, Metric] = {value: metric.labels(value) for value in values}
    made[None] = metric.labels("none")
    return made


def oneof_names(message: type[Message], oneof: str) -> list[str]:
    """The field names of a oneof: the kinds a frame may be."""
    return [field.name for field in message.DESCRIPTOR.oneofs_by_name[oneof].fields]
