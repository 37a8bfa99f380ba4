"""Every statement runs under the configured consistency and routing: they
live in the driver's default execution profile, which is keyed by the
driver's own sentinel (a profile merely named "default" is ignored by
statements that name none, which then run at LOCAL_ONE)."""

from __future__ import annotations

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

from chatmesh import cassandra_io
from chatmesh.settings import CassandraSettings


def test_statements_run_at_the_configured_consistency_in_the_local_datacenter() -> None:
    settings = CassandraSettings.from_env(
        {
            "CHATMESH_CASSANDRA_CONSISTENCY": "LOCAL_QUORUM",
            "CHATMESH_CASSANDRA_LOCAL_DC": "datacenter1",
        }
    )
    cluster = cassandra_io.build_cluster(settings)
    default = cluster.profile_manager.profiles[EXEC_PROFILE_DEFAULT]
    assert default.consistency_level == ConsistencyLevel.LOCAL_QUORUM
    routing = default.load_balancing_policy
    assert isinstance(routing, TokenAwarePolicy)
    assert isinstance(routing._child_policy, DCAwareRoundRobinPolicy)
    assert routing._child_policy.local_dc == "datacenter1"
    assert "default" not in cluster.profile_manager.profiles
