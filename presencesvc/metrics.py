"""presencesvc's metrics: gateway reports, transitions, sweeps."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from chatmesh.metrics import LATENCY_BUCKETS_S

REPORTS = Counter(
    "chatmesh_presence_reports_total",
    "Gateway reports, by kind (delta, full).",
    ["kind"],
)
TRANSITIONS = Counter(
    "chatmesh_presence_transitions_total",
    "Users turned online or offline, by state reached (online, offline).",
    ["to"],
)
EVENTS_PUBLISHED = Counter(
    "chatmesh_presence_events_published_total",
    "Presence changes published to watchers (hidden users' are not).",
)
SWEEP_SECONDS = Histogram(
    "chatmesh_presence_sweep_seconds",
    "One sweep: gateways whose lease ran out, then offlines due.",
    buckets=LATENCY_BUCKETS_S,
)
