"""The dev overlay's Redis users, against a real redis-server.

The ACL config, the key prefix and every service's URL come from the
rendered manifests. Each service's own Redis code then runs as its user
through the services' own client factory, and what a user must not do
(other services' keys, administrative commands, anonymous access) is
refused. redis-server comes from ``deploy/local/backing.sh up``.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis.asyncio as redis
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from chatmesh import redis_acl
from chatmesh.channels import gateway_channel, presence_channel
from chatmesh.clock import SystemClock
from chatmesh.pubsub import ChannelSubscriber
from chatmesh.ratelimit import Limit, RateLimiter
from chatmesh.redis_client import connect
from chatmesh.revocations import Revocations, revocations_channel
from chatmesh.v1 import delivery_pb2
from gateway.deliveries import DisconnectPublisher
from msgsvc.budgets import RedisUserBudgets
from msgsvc.ids import WorkerLease
from msgsvc.routing import RedisDeliveryPublisher
from msgsvc.send_identity import SendKey
from msgsvc.storage.claims import LegacyClaims, RedisClaimStore
from msgsvc.storage.route_journal import RouteJournal, RouteRef
from presencesvc.store import RedisPresenceStore
from sessionsvc.store import DeviceSession, RedisSessionStore
from tests.deploy.manifests import (
    Resource,
    config_map,
    of_kind,
    one_container,
    render,
    secret_value,
)

OVERLAY = "dev"
# The services with a Redis user; the others (notifysvc) use no Redis.
REDIS_SERVICES = tuple(redis_acl.service_rules(""))


def _service_urls(docs: tuple[Resource, ...]) -> dict[str, str]:
    deployments = of_kind(docs, "Deployment")
    urls = {}
    for service in REDIS_SERVICES:
        (entry,) = [
            e
            for e in one_container(deployments[service])["env"]
            if e["name"] == "CHATMESH_REDIS_URL"
        ]
        ref = entry["valueFrom"]["secretKeyRef"]
        urls[service] = secret_value(docs, ref["name"], ref["key"])
    return urls


def _acl_config(docs: tuple[Resource, ...]) -> str:
    """The config file the redis StatefulSet starts with, from its Secret."""
    redis_set = of_kind(docs, "StatefulSet")["redis"]
    container = one_container(redis_set)
    config_path = container["args"][1]
    volumes = {v["name"]: v for v in redis_set["spec"]["template"]["spec"]["volumes"]}
    for mount in container["volumeMounts"]:
        secret = volumes.get(mount["name"], {}).get("secret")
        if secret and config_path.startswith(mount["mountPath"] + "/"):
            relative = config_path.removeprefix(mount["mountPath"] + "/")
            (item,) = [i for i in secret["items"] if i["path"] == relative]
            return secret_value(docs, secret["secretName"], item["key"])
    pytest.fail(f"{config_path} is not in a mounted Secret")


def test_each_service_connects_as_its_own_user() -> None:
    docs = render(OVERLAY)
    address = urlsplit(config_map(docs, "chatmesh-config")["data"]["CHATMESH_REDIS_URL"])
    urls = {service: urlsplit(url) for service, url in _service_urls(docs).items()}
    for service, url in urls.items():
        assert url.scheme == "redis", service
        assert url.username == service
        assert url.password, service
        assert (url.hostname, url.port, url.path) == (address.hostname, address.port, "/0")
    assert len({url.password for url in urls.values()}) == len(urls)


def test_redis_probes_authenticate_as_the_probe_user() -> None:
    docs = render(OVERLAY)
    container = one_container(of_kind(docs, "StatefulSet")["redis"])
    (auth,) = [e for e in container["env"] if e["name"] == "REDISCLI_AUTH"]
    ref = auth["valueFrom"]["secretKeyRef"]
    password = secret_value(docs, ref["name"], ref["key"])
    assert f"user probe on >{password} " in _acl_config(docs)
    for probe in ("readinessProbe", "livenessProbe"):
        command = container[probe]["exec"]["command"]
        # redis-cli exits 0 on an error reply, NOAUTH included.
        assert "--user probe ping" in command[-1] and "PONG" in command[-1], probe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A redis-server on loopback loading the dev ACL config; yields its port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server not found; install it with: deploy/local/backing.sh up")
    directory: Path = tmp_path_factory.mktemp("redis-acl")
    config = directory / "acl.conf"
    config.write_text(_acl_config(render(OVERLAY)))
    port = _free_port()
    log = directory / "redis.log"
    with log.open("wb") as output:  # config errors included
        server = subprocess.Popen(
            [
                *(binary, str(config), "--bind", "127.0.0.1", "--port", str(port)),
                *("--dir", str(directory), "--save", "", "--appendonly", "no"),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            assert server.poll() is None, log.read_text()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(10)


def _client(docs: tuple[Resource, ...], service: str, port: int) -> redis.Redis:
    """The service's own client, its URL pointed at the test server."""
    url = urlsplit(_service_urls(docs)[service])
    netloc = f"{url.username}:{url.password}@127.0.0.1:{port}"
    return connect(urlunsplit(url._replace(netloc=netloc)))


async def _subscribed(
    client: redis.Redis, channels: list[str], received: list[bytes]
) -> tuple[ChannelSubscriber, asyncio.Task[None]]:
    subscriber = ChannelSubscriber(client, dict.fromkeys(channels, received.append), lambda: None)
    running = asyncio.create_task(subscriber.run(), name="acl-subscriber")
    subscribed = asyncio.create_task(subscriber.subscribed.wait())
    await asyncio.wait({running, subscribed}, timeout=5, return_when="FIRST_COMPLETED")
    if running.done():
        running.result()  # raises what refused the subscription
    assert subscribed.done()
    return subscriber, running


async def _as_gateway(client: redis.Redis, prefix: str) -> None:
    received: list[bytes] = []
    _, running = await _subscribed(
        client,
        [
            gateway_channel(prefix, "gw-1"),
            revocations_channel(prefix),
            presence_channel(prefix, "u1"),
        ],
        received,
    )
    try:
        assert await Revocations(client, prefix).revoked_at_ms("u1", "d1") is None
        limiter = RateLimiter(client, prefix)
        assert await limiter.allow(Limit("handshake-address", 1.0, 1), "192.0.2.1") == 0
        assert await limiter.allow(Limit("handshake-user", 1.0, 1), "u1") == 0
        target = delivery_pb2.DeliveryTarget(user_id="u1", device_id="d1")
        await DisconnectPublisher(client, prefix).publish("gw-1", [target])
        deadline = time.monotonic() + 5
        while not received:
            assert time.monotonic() < deadline, "published disconnect never arrived"
            await asyncio.sleep(0.02)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def _as_msgsvc(client: redis.Redis, prefix: str) -> None:
    lease = WorkerLease(client, prefix)
    await lease.acquire()
    assert await lease.renew(1)
    await lease.release(2)

    # Mirroring writes the pre-0010 user-scoped claim too.
    claims = RedisClaimStore(client, prefix, legacy=LegacyClaims.MIRROR)
    key = SendKey("u1", "d1", "c-1")
    won = await claims.claim(key, 1, "conv", "digest")
    await claims.reclaim(key, won, 2)
    offline = RedisClaimStore(client, prefix, legacy=LegacyClaims.OFF)
    await offline.claim(SendKey("u1", "", "c-2"), 3, "conv", "digest")

    journal = RouteJournal(client, prefix, "msgsvc-1")
    await journal.beat()
    entry = await journal.record(RouteRef("conv", 1))
    await journal.entries("msgsvc-1", recorded_before_ms=None, limit=10)
    await journal.done("msgsvc-1", entry)
    await journal.orphaned()
    await journal.adopt("msgsvc-0", hold_s=10)
    await journal.forget_if_empty("msgsvc-0")

    await RedisDeliveryPublisher(client, prefix).publish("gw-1", delivery_pb2.GatewayDelivery())

    await RedisUserBudgets(RateLimiter(client, prefix)).write("u1")

    # Device removals: recorded and announced, and followed by every instance.
    received: list[bytes] = []
    _, running = await _subscribed(client, [revocations_channel(prefix)], received)
    try:
        await Revocations(client, prefix).revoke("u1", "d1", 1_000)
        deadline = time.monotonic() + 5
        while not received:
            assert time.monotonic() < deadline, "revocation never arrived"
            await asyncio.sleep(0.02)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def _as_fanout(client: redis.Redis, prefix: str) -> None:
    await RedisDeliveryPublisher(client, prefix).publish("gw-1", delivery_pb2.GatewayDelivery())


async def _as_sessionsvc(client: redis.Redis, prefix: str) -> None:
    store = RedisSessionStore(client, prefix)
    session = DeviceSession("u1", "d1", "gw-1", "conn-1")
    await store.heartbeat("gw-1", 30)
    await store.register([session])
    assert await store.lookup(["u1"]) == [session]
    assert await store.unregister([session]) == 1


async def _as_presencesvc(client: redis.Redis, prefix: str) -> None:
    store = RedisPresenceStore(client, prefix, SystemClock())
    await store.renew("gw-1", 30_000)
    assert await store.connected("gw-1", ["u1", "u2"])
    await store.disconnected("gw-1", ["u2"], grace_ms=0)
    assert [t.user_id for t in await store.settle()] == ["u2"]
    await store.renew("gw-0", -1)  # a lease run out: its users go
    await store.connected("gw-0", ["u3"])
    await store.sweep_gateways()
    assert await store.population("gw-1") == {"u1"}
    online, *_ = await store.get(["u1", "u2", "u3"])
    assert online.online
    await client.publish(presence_channel(prefix, "u1"), b"")


WORKLOADS: dict[str, Callable[[redis.Redis, str], Awaitable[None]]] = {
    "gateway": _as_gateway,
    "msgsvc": _as_msgsvc,
    "fanout": _as_fanout,
    "sessionsvc": _as_sessionsvc,
    "presencesvc": _as_presencesvc,
}

# One key of each service's; every other service must be refused it.
KEYS_OWNED = {
    "msgsvc": "claim:d:{u1}:d1:c-1",
    "sessionsvc": "sessions:{u1}",
    "presencesvc": "presence:{u1}",
}


def test_every_service_has_a_workload() -> None:
    assert set(WORKLOADS) == set(REDIS_SERVICES)


@pytest.mark.parametrize("service", REDIS_SERVICES)
def test_service_runs_its_redis_code_as_its_user(service: str, acl_redis: int) -> None:
    docs = render(OVERLAY)
    prefix = config_map(docs, "chatmesh-config")["data"]["CHATMESH_KEY_PREFIX"]

    async def scenario() -> None:
        client = _client(docs, service, acl_redis)
        try:
            await WORKLOADS[service](client, prefix)
        finally:
            await client.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("service", REDIS_SERVICES)
def test_service_is_refused_what_is_not_its_own(service: str, acl_redis: int) -> None:
    docs = render(OVERLAY)
    prefix = config_map(docs, "chatmesh-config")["data"]["CHATMESH_KEY_PREFIX"]

    async def scenario() -> None:
        client = _client(docs, service, acl_redis)
        try:
            for owner, key in KEYS_OWNED.items():
                if owner != service:
                    with pytest.raises(NoPermissionError):
                        await client.exists(prefix + key)
            for command in (("FLUSHALL",), ("KEYS", "*"), ("CONFIG", "GET", "*"), ("SCAN", 0)):
                with pytest.raises(NoPermissionError):
                    await client.execute_command(*command)
            # Channels outside the gateways' deliveries.
            with pytest.raises(NoPermissionError):
                await client.publish(f"{prefix}elsewhere", b"")
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_no_anonymous_or_wrong_password_access(acl_redis: int) -> None:
    docs = render(OVERLAY)
    url = urlsplit(_service_urls(docs)["msgsvc"])

    async def scenario() -> None:
        anonymous = connect(f"redis://127.0.0.1:{acl_redis}/0")
        wrong = connect(f"redis://{url.username}:not-the-password@127.0.0.1:{acl_redis}/0")
        try:
            with pytest.raises((AuthenticationError, ResponseError)):
                await anonymous.ping()
            with pytest.raises(AuthenticationError):
                await wrong.ping()
        finally:
            await anonymous.aclose()
            await wrong.aclose()

    asyncio.run(scenario())


def test_the_dev_users_have_the_rules_every_deployment_uses() -> None:
    """acl.conf and the users LocalCluster creates come from one definition."""
    lines = {
        line.split()[1]: line
        for line in _acl_config(render(OVERLAY)).splitlines()
        if line.startswith("user ")
    }
    rules_by_service = redis_acl.service_rules("cm:")
    # No user left behind for a service that stopped using Redis.
    assert set(lines) == {"default", "probe", *rules_by_service}
    for service, rules in rules_by_service.items():
        assert lines[service].split(" resetkeys resetchannels ", 1)[1] == rules, service
