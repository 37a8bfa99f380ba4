from __future__ import annotations

import logging

from cassandra.cluster import Cluster

from chatmesh import cassandra_io
from chatmesh.settings import CassandraSettings


def _server_warning(text: str) -> logging.LogRecord:
    # As cassandra.protocol logs a warning a node attached to a response.
    return logging.LogRecord(
        "cassandra.protocol", logging.WARNING, __file__, 1, "Server warning: %s", (text,), None
    )


def test_only_the_expected_batch_warning_is_dropped() -> None:
    cluster = cassandra_io.build_cluster(CassandraSettings.from_env({}))
    assert isinstance(cluster, Cluster)
    driver = logging.getLogger("cassandra.protocol")
    expected = _server_warning(
        "Unlogged batch covering 14 partitions detected against table [ks.messages]."
    )
    other = _server_warning("Batch for [ks.messages] is of size 60KiB, exceeding 50KiB")
    assert not driver.filter(expected)
    assert driver.filter(other)
