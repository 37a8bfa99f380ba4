"""Every process serves Prometheus metrics, and a message moves them.

Each process's ``/metrics`` is scraped and parsed as Prometheus text; then a
1:1 message and a group message go through Envoy, and the counters each
process keeps about them must have moved: frames at the gateways, acks and
their latency at msgsvc, deliveries, session lookups served by sessionsvc,
records read by the fan-out worker. Other tests share the cluster, so
counters are compared as at least the expected increase.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable, Iterable

import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from chatmesh.client import Connection, text_send
from chatmesh.devcluster import LocalCluster
from chatmesh.v1 import client_pb2
from tests.conftest import add_users, unique

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
SETTLE_TIMEOUT_S = 10.0
# The metric families each kind of process must export, besides the gRPC
# server metrics every process has.
EXPECTED_FAMILIES = {
    "gateway": {
        "chatmesh_gateway_open_connections",
        "chatmesh_gateway_handshakes",
        "chatmesh_gateway_frames_received",
        "chatmesh_gateway_frames_sent",
        "chatmesh_gateway_deliveries_pushed",
        "chatmesh_gateway_presence_subscriptions",
        "chatmesh_gateway_presence_changes",
    },
    "msgsvc": {
        "chatmesh_msgsvc_frames",
        "chatmesh_send_ack_seconds",
        "chatmesh_routing_seconds",
        "chatmesh_deliveries_published",
        "chatmesh_store_operation_seconds",
        "chatmesh_route_journal_appends",
        "chatmesh_push_jobs_appended",
    },
    "presencesvc": {
        "chatmesh_presence_reports",
        "chatmesh_presence_transitions",
        "chatmesh_presence_events_published",
        "chatmesh_presence_sweep_seconds",
    },
    "notifysvc": {
        "chatmesh_push_jobs_read",
        "chatmesh_push_jobs_in_flight",
        "chatmesh_pushes",
        "chatmesh_push_skipped",
        "chatmesh_push_message_to_provider_seconds",
        "chatmesh_store_operation_seconds",
    },
    "fanout": {
        "chatmesh_fanout_records_consumed",
        "chatmesh_fanout_records_routed",
        "chatmesh_fanout_batch_seconds",
        "chatmesh_fanout_consumer_lag_records",
    },
}
EVERY_PROCESS_FAMILIES = {"chatmesh_grpc_server_handled", "chatmesh_grpc_server_handling_seconds"}


def _services(cluster: LocalCluster) -> list[str]:
    return cluster.services


def _scrape_text(cluster: LocalCluster, name: str) -> tuple[str, str]:
    with urllib.request.urlopen(cluster.ops_url(name, "/metrics"), timeout=5.0) as response:
        assert response.status == 200, name
        return response.headers["Content-Type"], response.read().decode()


def _scrape(cluster: LocalCluster, names: Iterable[str]) -> Samples:
    """Every sample of the named processes, values of the same series summed."""
    samples: Samples = {}
    for name in names:
        _, text = _scrape_text(cluster, name)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, frozenset(sample.labels.items()))
                samples[key] = samples.get(key, 0.0) + sample.value
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= lbls)


def _kind(name: str) -> str:
    if name.startswith("gateway-"):
        return "gateway"
    if name.startswith("fanout-"):
        return "fanout"
    return name


def test_every_process_serves_prometheus_text(cluster: LocalCluster) -> None:
    names = _services(cluster)
    assert {"gateway-1", "gateway-2", "msgsvc", "fanout-1", "sessionsvc"} <= set(names)
    assert {"presencesvc", "notifysvc"} <= set(names)
    for name in names:
        content_type, text = _scrape_text(cluster, name)
        assert content_type.startswith("text/plain"), (name, content_type)
        families = {f.name for f in text_string_to_metric_families(text)}
        expected = EVERY_PROCESS_FAMILIES | EXPECTED_FAMILIES.get(_kind(name), set())
        assert expected <= families, (name, expected - families)


async def _eventually(check: Callable[[], list[str]]) -> None:
    """Waits until ``check`` names no unmet expectation; fails with the last ones."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        unmet = await asyncio.to_thread(check)
        if not unmet:
            return
        if time.monotonic() > deadline:
            raise AssertionError(unmet)
        await asyncio.sleep(0.2)


async def test_a_1to1_and_a_group_message_move_the_counters_of_every_process(
    cluster: LocalCluster,
    open_client,  # type: ignore[no-untyped-def]
    pg_pool: asyncpg.Pool,
) -> None:
    gateways = [n for n in cluster.processes if n.startswith("gateway-")]
    scopes = {
        "gateway": gateways,
        "msgsvc": cluster.msgsvc_names,
        "fanout": cluster.fanout_names,
        "sessionsvc": ["sessionsvc"],
    }
    before = {scope: _scrape(cluster, names) for scope, names in scopes.items()}

    ann, ben, cat = unique("ann"), unique("ben"), unique("cat")
    await add_users(pg_pool, ann, ben, cat)
    ann_ws: Connection = await open_client(ann)
    ben_ws: Connection = await open_client(ben)
    cat_ws: Connection = await open_client(cat)

    ack = await ann_ws.request(text_send(unique("m"), ben, None, "one to one"))
    assert ack.WhichOneof("kind") == "ack", ack
    assert (await ben_ws.recv_kind("deliver")).deliver.message.message_id == ack.ack.message_id

    created = await ann_ws.request(
        client_pb2.ClientFrame(
            create_group=client_pb2.CreateGroupFrame(
                client_group_id=unique("g"), title="Metrics", member_user_ids=[ben, cat]
            )
        )
    )
    assert created.WhichOneof("kind") == "group", created
    group = created.group.group.conversation_id
    group_ack = await ann_ws.request(text_send(unique("m"), None, group, "to the group"))
    assert group_ack.WhichOneof("kind") == "ack", group_ack
    for member in (ben_ws, cat_ws):
        while True:
            delivered = (await member.recv_kind("deliver")).deliver.message
            if delivered.message_id == group_ack.ack.message_id:
                break

    # (scope, sample, labels, at least this much more than before)
    expectations: list[tuple[str, str, dict[str, str], float]] = [
        ("gateway", "chatmesh_gateway_handshakes_total", {"outcome": "accepted"}, 3),
        ("gateway", "chatmesh_gateway_frames_received_total", {"kind": "send"}, 2),
        ("gateway", "chatmesh_gateway_frames_received_total", {"kind": "create_group"}, 1),
        ("gateway", "chatmesh_gateway_frames_sent_total", {"kind": "ack"}, 2),
        ("gateway", "chatmesh_gateway_frames_sent_total", {"kind": "deliver"}, 3),
        ("gateway", "chatmesh_gateway_deliveries_pushed_total", {}, 3),
        ("msgsvc", "chatmesh_msgsvc_frames_total", {"kind": "send", "outcome": "ok"}, 2),
        ("msgsvc", "chatmesh_msgsvc_frames_total", {"kind": "create_group", "outcome": "ok"}, 1),
        ("msgsvc", "chatmesh_send_ack_seconds_count", {}, 2),
        ("msgsvc", "chatmesh_routing_seconds_count", {}, 1),
        ("msgsvc", "chatmesh_deliveries_published_total", {}, 1),
        ("msgsvc", "chatmesh_route_journal_appends_total", {}, 1),
        (
            "msgsvc",
            "chatmesh_store_operation_seconds_count",
            {"store": "cassandra", "operation": "messages.write"},
            2,
        ),
        (
            "msgsvc",
            "chatmesh_store_operation_seconds_count",
            {"store": "redis", "operation": "claims.claim"},
            2,
        ),
        (
            "msgsvc",
            "chatmesh_store_operation_seconds_count",
            {"store": "postgresql", "operation": "directory.touch"},
            2,
        ),
        (
            "sessionsvc",
            "chatmesh_grpc_server_handled_total",
            {"method": "LookupSessions", "code": "OK"},
            2,
        ),
        (
            "sessionsvc",
            "chatmesh_grpc_server_handled_total",
            {"method": "RegisterSessions", "code": "OK"},
            3,
        ),
        (
            "sessionsvc",
            "chatmesh_grpc_server_handling_seconds_count",
            {"method": "LookupSessions"},
            2,
        ),
        ("fanout", "chatmesh_fanout_records_consumed_total", {}, 2),
        ("fanout", "chatmesh_fanout_records_routed_total", {}, 2),
        ("fanout", "chatmesh_fanout_batch_seconds_count", {}, 1),
        ("fanout", "chatmesh_deliveries_published_total", {}, 2),
    ]

    def unmet() -> list[str]:
        after = {scope: _scrape(cluster, names) for scope, names in scopes.items()}
        missing = []
        for scope, name, labels, increase in expectations:
            moved = _value(after[scope], name, **labels) - _value(before[scope], name, **labels)
            if moved < increase:
                missing.append(f"{scope} {name}{labels}: +{moved}, expected +{increase}")
        return missing

    await _eventually(unmet)
    gauge = _value(_scrape(cluster, gateways), "chatmesh_gateway_open_connections")
    assert gauge >= 3
