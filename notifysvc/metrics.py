"""notifysvc's metrics: jobs read, pushes sent and skipped, and how long a
message takes to reach its provider."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from chatmesh.metrics import LATENCY_BUCKETS_S

JOBS_READ = Counter(
    "chatmesh_push_jobs_read_total",
    "Push jobs read from the job topic, one per routed message (a job read again"
    " after a restart counts again).",
)
JOBS_IN_FLIGHT = Gauge(
    "chatmesh_push_jobs_in_flight",
    "Push jobs read and not yet finished (sent, skipped or dropped).",
)
PUSHES = Counter(
    "chatmesh_pushes_total",
    "Notifications handed to a provider, by provider and outcome"
    " (delivered, retry, dead_credential, rejected).",
    ["provider", "outcome"],
)
SKIPPED = Counter(
    "chatmesh_push_skipped_total",
    "Missed messages not pushed to a device, by reason (connected, read, muted,"
    " no_credential, not_member, expired, malformed).",
    ["reason"],
)
MESSAGE_TO_PROVIDER_SECONDS = Histogram(
    "chatmesh_push_message_to_provider_seconds",
    "From a message's id time (its send) to the provider accepting its push;"
    " the coalescing window included.",
    buckets=(*LATENCY_BUCKETS_S, 5.0, 10.0, 30.0, 60.0),
)
