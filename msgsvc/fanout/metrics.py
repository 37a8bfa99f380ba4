"""The fan-out worker's metrics: records read and routed, batch time, consumer lag.

Deliveries and pushes are counted by the ``Router`` (``msgsvc.metrics``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from chatmesh.metrics import LATENCY_BUCKETS_S

RECORDS_CONSUMED = Counter(
    "chatmesh_fanout_records_consumed_total",
    "Message log records read (a record read again after a failure counts again).",
)
RECORDS_ROUTED = Counter(
    "chatmesh_fanout_records_routed_total",
    "Message log records routed to members' devices or nudged (channels).",
)
RECORDS_DROPPED = Counter(
    "chatmesh_fanout_records_dropped_total",
    "Message log records whose row never appeared within the commit bound.",
)
BATCH_SECONDS = Histogram(
    "chatmesh_fanout_batch_seconds",
    "From a batch read to its offsets committed, retries included.",
    buckets=(*LATENCY_BUCKETS_S, 5.0, 10.0, 30.0),
)
CONSUMER_LAG = Gauge(
    "chatmesh_fanout_consumer_lag_records",
    "Records of an assigned partition not yet committed: its high watermark"
    " minus the group's committed offset.",
    ["partition"],
)
