"""msgsvc's metrics: client frames, send acks, routing, the route journal.

The fan-out worker routes with the same ``Router``, so the routing metrics
are its too. Store latencies are ``chatmesh.metrics``' (``chatmesh.store_observer``).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from chatmesh.metrics import LATENCY_BUCKETS_S, oneof_names
from chatmesh.v1 import client_pb2

FRAMES = Counter(
    "chatmesh_msgsvc_frames_total",
    "Client frames handled from gateway streams, by kind and outcome (ok, error).",
    ["kind", "outcome"],
)
ERRORS = Counter(
    "chatmesh_msgsvc_errors_total",
    "Error frames answered to client frames, by reason.",
    ["reason"],
)
SEND_ACK_SECONDS = Histogram(
    "chatmesh_send_ack_seconds",
    "From a send frame's arrival in msgsvc to its ack.",
    buckets=LATENCY_BUCKETS_S,
)
ROUTING_SECONDS = Histogram(
    "chatmesh_routing_seconds",
    "From a 1:1 message stored (acked) to its deliveries published and pushes queued.",
    buckets=LATENCY_BUCKETS_S,
)
DELIVERIES_PUBLISHED = Counter(
    "chatmesh_deliveries_published_total",
    "Deliveries published to gateways: one per gateway holding recipients, per frame.",
)
PUSH_JOBS_APPENDED = Counter(
    "chatmesh_push_jobs_appended_total",
    "Push jobs appended: one per routed message, naming its recipients' live devices.",
)
SYNC_PAGE_MESSAGES = Counter(
    "chatmesh_sync_page_messages_total",
    "Messages a sync page read, by outcome: sent, or held (left out because the"
    " device named it as held).",
    ["outcome"],
)
JOURNAL_APPENDS = Counter(
    "chatmesh_route_journal_appends_total",
    "Messages entered in this instance's route journal before their ack.",
)
JOURNAL_REPLAYS = Counter(
    "chatmesh_route_journal_replays_total",
    "Journal entries settled by recovery: routed again, or dropped (never written).",
    ["outcome"],
)
JOURNAL_ADOPTIONS = Counter(
    "chatmesh_route_journal_adoptions_total",
    "Journals of dead instances this instance took over to replay.",
)

FRAME_KINDS = oneof_names(client_pb2.ClientFrame, "kind")
# (kind, is an error) -> child, made up front: one dict lookup per frame.
FRAMES_BY_OUTCOME = {
    (kind, error): FRAMES.labels(kind, "error" if error else "ok")
    for kind in [*FRAME_KINDS, "none"]
    for error in (False, True)
}
SYNC_PAGE_SENT = SYNC_PAGE_MESSAGES.labels("sent")
SYNC_PAGE_HELD = SYNC_PAGE_MESSAGES.labels("held")
REPLAYS_ROUTED = JOURNAL_REPLAYS.labels("routed")
REPLAYS_DROPPED = JOURNAL_REPLAYS.labels("dropped")
