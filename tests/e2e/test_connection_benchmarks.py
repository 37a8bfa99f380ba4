"""The connection benchmarks still work, with tiny numbers (no timing is
asserted: benchmarks are not tests), on a cluster of three gateways behind
two Envoys, which also proves that every Envoy reaches every gateway."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import connections, reconnect_storm
from chatmesh.devcluster import ClusterConfig, LocalCluster
from tests.conftest import Stores


@pytest.fixture(scope="module")
def fleet_cluster(
    stores: Stores, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    config = ClusterConfig.on_free_ports(
        stores, tmp_path_factory.mktemp("fleet"), "fleet", gateways=3, edges=2
    )
    with LocalCluster.running(dataclasses.replace(config, log_level="WARNING")) as cluster:
        yield cluster


async def test_idle_connections_are_counted_per_gateway_and_edge(
    fleet_cluster: LocalCluster,
) -> None:
    assert len(fleet_cluster.edge_urls) == 2
    assert "envoy-2" not in fleet_cluster.services
    args = argparse.Namespace(connections=30, workers=2, hold_s=1.0, settle_s=0.5)
    results = await connections._run(fleet_cluster, args)
    assert results["connect"]["connected"] == 30
    assert results["after_hold"] == {"open": 30}
    deltas = results["gateways"]["per_process_kib_delta"]
    assert set(deltas) == {"gateway-1", "gateway-2", "gateway-3"}
    assert set(results["envoy"]["per_process_kib_delta"]) == {"envoy", "envoy-2"}


async def test_reconnect_storm_loses_nothing(fleet_cluster: LocalCluster, tmp_path: Path) -> None:
    args = argparse.Namespace(
        receivers=12, per_sender=6, workers=2, kill=1, restart_after_s=0.5, deadline_s=60.0
    )
    storm = (await reconnect_storm._run(fleet_cluster, args))["storm"]
    assert storm["messages_acked"] == 12
    assert storm["lost"] == 0
    assert storm["all_caught_up"]
