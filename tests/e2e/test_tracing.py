"""One message, one trace: from the gateway's frame through msgsvc to the stores.

A real OTLP/gRPC collector (the ``TraceService`` of ``opentelemetry-proto``,
served here on a free port) receives what a cluster pointed at it by
``OTEL_EXPORTER_OTLP_ENDPOINT`` exports. After one 1:1 message, a single
trace must hold the gateway's span for the send frame, msgsvc's span for
handling it as its child, the store calls of the send below that, and the
routing that follows: the session lookup served by sessionsvc and the
delivery published to the recipient's gateway.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Iterator
from concurrent import futures

import asyncpg
import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection, text_send
from chatmesh.clock import SystemClock
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.v1 import client_pb2
from tests.conftest import Stores, add_users, unique

EXPORT_TIMEOUT_S = 15.0


@dataclasses.dataclass(frozen=True)
class ReceivedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver that keeps every span it is sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []

    def Export(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.ServicerContext,
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        received = []
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope_spans in resource_spans.scope_spans:
                received.extend(
                    ReceivedSpan(
                        service,
                        s.trace_id.hex(),
                        s.span_id.hex(),
                        s.parent_span_id.hex(),
                        s.name,
                    )
                    for s in scope_spans.spans
                )
        with self._lock:
            self._spans.extend(received)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[Collector, int]]:
    received = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(received, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield received, port
    server.stop(0)


@pytest.fixture(scope="module")
def traced_cluster(
    stores: Stores,
    collector: tuple[Collector, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalCluster]:
    _, port = collector
    config = dataclasses.replace(
        ClusterConfig.on_free_ports(stores, tmp_path_factory.mktemp("traced"), "traced"),
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: export at once, not every 5 s
        },
    )
    with LocalCluster.running(config) as cluster:
        yield cluster


def _trace_of_send(spans: list[ReceivedSpan]) -> list[ReceivedSpan] | None:
    """The spans of the trace that a gateway's send frame began, once msgsvc's are in."""
    for root in spans:
        if root.service == "gateway" and root.name == "ws frame send":
            trace = [s for s in spans if s.trace_id == root.trace_id]
            if any(s.service == "msgsvc" for s in trace):
                return trace
    return None


async def test_a_message_is_one_trace_from_the_gateway_through_msgsvc_to_the_stores(
    traced_cluster: LocalCluster,
    collector: tuple[Collector, int],
    pg_pool: asyncpg.Pool,
) -> None:
    received, _ = collector
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    issuer = TokenIssuer((traced_cluster.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())
    alice_ws = await Connection.open(
        traced_cluster.edge_url, issuer.mint(Identity(alice, "phone"), ttl_s=600)
    )
    bob_ws = await Connection.open(
        traced_cluster.edge_url, issuer.mint(Identity(bob, "phone"), ttl_s=600)
    )
    try:
        ack = await alice_ws.request(text_send(unique("m"), bob, None, "traced"))
        assert ack.WhichOneof("kind") == "ack", ack
        delivered = (await bob_ws.recv_kind("deliver")).deliver.message
        assert delivered.message_id == ack.ack.message_id
    finally:
        await alice_ws.close()
        await bob_ws.close()

    expected = {
        ("gateway", "ws frame send"),
        ("msgsvc", "frame send"),
        ("msgsvc", "cassandra messages.write"),
        ("msgsvc", "redis claims.claim"),
        ("msgsvc", "postgresql directory.touch"),
        ("msgsvc", "chatmesh.v1.SessionService/LookupSessions"),
        ("sessionsvc", "chatmesh.v1.SessionService/LookupSessions"),
        ("msgsvc", "redis deliveries.publish"),
    }
    deadline = time.monotonic() + EXPORT_TIMEOUT_S
    while True:
        trace = _trace_of_send(received.spans())
        seen = {(s.service, s.name) for s in trace or ()}
        if expected <= seen or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert trace is not None, "no trace with spans from both the gateway and msgsvc"
    assert expected <= seen, expected - seen

    by_id = {s.span_id: s for s in trace}
    gateway_span = next(s for s in trace if s.name == "ws frame send")
    frame_span = next(s for s in trace if s.service == "msgsvc" and s.name == "frame send")
    assert gateway_span.parent_span_id == ""  # the trace begins at the edge
    assert frame_span.parent_span_id == gateway_span.span_id

    def ancestors(span: ReceivedSpan) -> list[str]:
        chain = []
        while span.parent_span_id in by_id:
            span = by_id[span.parent_span_id]
            chain.append(span.span_id)
        return chain

    write = next(s for s in trace if s.name == "cassandra messages.write")
    assert write.parent_span_id == frame_span.span_id
    publish = next(s for s in trace if s.name == "redis deliveries.publish")
    assert frame_span.span_id in ancestors(publish)  # routing continues the frame's trace
    served = next(s for s in trace if s.service == "sessionsvc")
    assert by_id[served.parent_span_id].service == "msgsvc"  # across the unary call


async def test_a_group_message_is_traced_through_the_message_log_to_the_fanout(
    traced_cluster: LocalCluster,
    collector: tuple[Collector, int],
    pg_pool: asyncpg.Pool,
) -> None:
    received, _ = collector
    ann, ben = unique("ann"), unique("ben")
    await add_users(pg_pool, ann, ben)
    issuer = TokenIssuer((traced_cluster.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())
    ann_ws = await Connection.open(
        traced_cluster.edge_url, issuer.mint(Identity(ann, "phone"), ttl_s=600)
    )
    ben_ws = await Connection.open(
        traced_cluster.edge_url, issuer.mint(Identity(ben, "phone"), ttl_s=600)
    )
    try:
        created = await ann_ws.request(
            client_pb2.ClientFrame(
                create_group=client_pb2.CreateGroupFrame(
                    client_group_id=unique("g"), title="Traced", member_user_ids=[ben]
                )
            )
        )
        group = created.group.group.conversation_id
        ack = await ann_ws.request(text_send(unique("m"), None, group, "to the group"))
        assert ack.WhichOneof("kind") == "ack", ack
        while (await ben_ws.recv_kind("deliver")).deliver.message.message_id != ack.ack.message_id:
            pass
    finally:
        await ann_ws.close()
        await ben_ws.close()

    expected = {
        ("gateway", "ws frame send"),
        ("msgsvc", "frame send"),
        ("msgsvc", "kafka log.append"),
        ("fanout", "fanout route"),
        ("fanout", "cassandra messages.get"),
        ("fanout", "redis deliveries.publish"),
    }
    deadline = time.monotonic() + EXPORT_TIMEOUT_S
    while True:
        spans = received.spans()
        routed = {s.trace_id for s in spans if s.service == "fanout"}
        traces = [[s for s in spans if s.trace_id == t] for t in routed]
        # The group send's trace, not the group creation's (whose frame is create_group).
        trace = next((t for t in traces if ("msgsvc", "frame send") in _names(t)), [])
        if expected <= _names(trace) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert expected <= _names(trace), expected - _names(trace)
    by_id = {s.span_id: s for s in trace}
    route = next(s for s in trace if s.name == "fanout route")
    assert by_id[route.parent_span_id].name == "kafka log.append"


def _names(trace: list[ReceivedSpan]) -> set[tuple[str, str]]:
    return {(s.service, s.name) for s in trace}
