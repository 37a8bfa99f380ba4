"""Every process starts with its dependencies down, stays up and unready,
and becomes ready by itself when they return, in whatever order; and it
goes unready and heals again when they fail later.

The stores are real: PostgreSQL and Cassandra behind TCP forwarders the test
switches off and on (the shared servers stay untouched for other tests),
Redis and Kafka the cluster's own processes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection
from chatmesh.clock import SystemClock
from chatmesh.devcluster import ClusterConfig, LocalCluster
from tests.conftest import Stores, add_users, unique
from tests.e2e.test_lifecycle import _send_until_acked
from tests.support.tcp_proxy import TcpProxy

SETTLE_S = 4.0  # long enough for a process that would crash or claim readiness to do so
READY_TIMEOUT_S = 90.0
UNREADY_TIMEOUT_S = 15.0


@dataclasses.dataclass
class Rig:
    cluster: LocalCluster
    postgres: TcpProxy
    cassandra: TcpProxy

    @property
    def services(self) -> list[str]:
        return self.cluster.services


@pytest.fixture(scope="module")
def rig(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    pg_url = urlsplit(stores.pg_dsn)
    postgres = TcpProxy(pg_url.hostname or "127.0.0.1", pg_url.port or 5432)
    cassandra = TcpProxy(stores.cassandra.hosts[0], stores.cassandra.port)
    base = ClusterConfig.on_free_ports(
        stores, tmp_path_factory.mktemp("any-order"), "order", own_redis=True, own_kafka=True
    )
    config = dataclasses.replace(
        base,
        pg_dsn=urlunsplit(pg_url._replace(netloc=f"{pg_url.username}@127.0.0.1:{postgres.port}")),
        cassandra=dataclasses.replace(base.cassandra, hosts=("127.0.0.1",), port=cassandra.port),
    )
    cluster = LocalCluster(config)
    postgres.start()
    cassandra.start()
    try:
        cluster.prepare()  # schemas, through the forwarders while they are up
        cluster.define()
        postgres.stop()
        cassandra.stop()
        yield Rig(cluster, postgres, cassandra)
    finally:
        cluster.stop()
        postgres.close()
        cassandra.close()


def _status(cluster: LocalCluster, name: str, path: str) -> int:
    try:
        with urllib.request.urlopen(cluster.ops_url(name, path), timeout=2.0) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _assert_up_and_unready(rig: Rig, names: list[str]) -> None:
    for name in names:
        process = rig.cluster.processes[name]
        assert process.running(), f"{name} exited:\n{process.log_tail()}"
        assert _status(rig.cluster, name, "/healthz") == 200, name
        assert _status(rig.cluster, name, "/readyz") == 503, name


def _wait_ready(rig: Rig, names: list[str]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    waiting = list(names)
    while waiting and time.monotonic() < deadline:
        for name in list(waiting):
            process = rig.cluster.processes[name]
            assert process.running(), f"{name} exited:\n{process.log_tail()}"
            if _status(rig.cluster, name, "/readyz") == 200:
                waiting.remove(name)
        time.sleep(0.2)
    assert not waiting, {n: rig.cluster.processes[n].log_tail(10) for n in waiting}


async def _chat(rig: Rig, pg_dsn: str) -> None:
    """A message from one user to another through Envoy, acked and delivered."""
    alice, bob = unique("alice"), unique("bob")
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    try:
        await add_users(pool, alice, bob)
    finally:
        await pool.close()
    key = (rig.cluster.keys_dir / "jwt-private.pem").read_bytes()
    issuer = TokenIssuer(key, SystemClock())
    alice_ws = await Connection.open(
        rig.cluster.edge_url, issuer.mint(Identity(alice, "phone"), ttl_s=600)
    )
    bob_ws = await Connection.open(
        rig.cluster.edge_url, issuer.mint(Identity(bob, "phone"), ttl_s=600)
    )
    try:
        ack = await _send_until_acked(alice_ws, bob, "after the stores came back")
        delivered = (await bob_ws.recv_kind("deliver", timeout_s=20.0)).deliver.message
        assert delivered.message_id == ack.message_id
    finally:
        await alice_ws.close()
        await bob_ws.close()


def test_every_process_starts_with_everything_down_and_heals_in_any_order(
    rig: Rig, stores: Stores
) -> None:
    cluster = rig.cluster
    gateways = [n for n in rig.services if n.startswith("gateway-")]
    backends = [n for n in rig.services if n not in gateways and n not in ("sessionsvc",)]
    # Edge first, with nothing behind it; then the workers with no stores and
    # no sessionsvc; then sessionsvc; then the stores, one by one.
    cluster.launch([*gateways, "envoy", "push-providers"])
    time.sleep(SETTLE_S)
    _assert_up_and_unready(rig, gateways)
    cluster.launch(backends)
    time.sleep(SETTLE_S)
    _assert_up_and_unready(rig, [*gateways, *backends])
    cluster.launch(["sessionsvc"])
    for bring_up in (
        lambda: cluster.launch(["kafka"]),
        rig.cassandra.start,
        lambda: cluster.launch(["redis"]),
    ):
        bring_up()
        time.sleep(SETTLE_S / 2)
        # PostgreSQL is still down: nobody that needs it may claim readiness.
        # (Gateways need only Redis, msgsvc's stream and sessionsvc.)
        _assert_up_and_unready(rig, ["msgsvc", "fanout-1"])
    rig.postgres.start()
    _wait_ready(rig, rig.services)
    asyncio.run(_chat(rig, stores.pg_dsn))


def test_stores_failing_later_make_services_unready_until_they_return(
    rig: Rig, stores: Stores
) -> None:
    """Runs after the test above: everything is up and ready."""
    cluster = rig.cluster
    _wait_ready(rig, rig.services)
    rig.postgres.stop()
    cluster.processes["redis"].kill()
    # Each notices at its next two readiness checks (2 s apart, then 0.5 s; 2 s to answer).
    deadline = time.monotonic() + UNREADY_TIMEOUT_S
    waiting = ["msgsvc", "fanout-1", "sessionsvc", "presencesvc", "notifysvc"]
    while waiting:
        waiting = [n for n in waiting if _status(cluster, n, "/readyz") != 503]
        assert time.monotonic() < deadline or not waiting, f"still ready: {waiting}"
        time.sleep(0.2)
    # Gateways ride a store outage out themselves and keep accepting.
    assert _status(cluster, "gateway-1", "/readyz") == 200
    # Back in the other order.
    cluster.launch(["redis"])
    rig.postgres.start()
    _wait_ready(rig, rig.services)
    asyncio.run(_chat(rig, stores.pg_dsn))
