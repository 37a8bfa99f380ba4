"""The trickle benchmark still works, with tiny numbers (no timing is
asserted: benchmarks are not tests)."""

from __future__ import annotations

from bench import cassandra_trickle
from tests.conftest import Stores, unique


def test_a_short_trickle_counts_every_write_and_the_stores_cpu(stores: Stores) -> None:
    keyspace = unique("trickle").replace("-", "_")
    results, slack_ns = cassandra_trickle.measure(
        stores.cassandra.port, [40.0], seconds=0.5, warmup_s=0.0, keyspace=keyspace
    )
    (result,) = results
    assert result["rate_per_s"] == 40.0
    assert 1 <= result["writes"] <= 21  # on schedule at most; a stalled loop sends fewer
    assert result["write_latency"]["samples"] == result["writes"]
    assert result["cassandra_cpu_ms_per_s"] > 0
    assert sum(result["by_thread_pool_ms_per_s"].values()) > 0
    assert slack_ns > 0
