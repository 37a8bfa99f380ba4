"""The load generator's smoke run: a second of tiny load through the edge, so
bench.send_path and bench.peers keep working. Figures are not checked (a
benchmark is not a test); only that every message is accounted for."""

from __future__ import annotations

import pytest

from bench import send_path
from bench.loadgen import LoadShape
from chatmesh.devcluster import LocalCluster

PAIRS = 3
SHAPE = LoadShape(rate_per_sender=5.0, duration_s=1.0, settle_s=15.0)


@pytest.mark.parametrize("encoding", ["json", "binary"])
def test_the_load_generator_accounts_for_every_message(
    cluster: LocalCluster, encoding: str
) -> None:
    result = send_path.run_step(cluster, PAIRS, SHAPE, workers=2, encoding=encoding)

    expected = PAIRS * SHAPE.messages_per_sender
    assert result["workers"] == 2
    assert (result["sent"], result["acked"], result["delivered"]) == (expected,) * 3
    assert result["lost"] == 0 and result["duplicate_deliveries"] == 0
    assert result["errors"] == {}
    for latency in (result["ack_latency"], result["delivery_latency"]):
        assert latency["samples"] == expected
        assert 0 < latency["p50_ms"] <= latency["max_ms"]
        assert "p99_ms" not in latency  # too few samples for a p99
    costs = result["cost_per_delivered_message"]
    assert {"loadgen", "load-generator", "msgsvc", "gateway-1", "envoy"} <= costs.keys()
    assert costs["total"]["cpu_ms"] > 0
    assert costs["loadgen"]["rss_mib"] > 0  # the workers were alive when measured
