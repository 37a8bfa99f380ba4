"""Pushes, end to end: a message sent through the edge reaches the local FCM,
APNs and Web Push servers (which check each protocol; the Web Push one
decrypts with the subscription's key) for exactly the devices that were not
connected, coalesced per device over notifysvc's window."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from confluent_kafka import Producer

from chatmesh.client import Connection
from chatmesh.devcluster import LocalCluster
from chatmesh.kafka_io import topic_name
from chatmesh.v1 import client_pb2, directory_service_pb2_grpc, group_service_pb2_grpc
from chatmesh.v1 import directory_service_pb2 as d
from chatmesh.v1 import group_service_pb2 as g
from chatmesh.v1 import push_pb2 as push
from notifysvc.providers.local.keys import APNS_TOPIC
from notifysvc.windows import DEFAULT_WINDOW_S
from tests.conftest import add_users, unique

OpenClient = Callable[..., Awaitable[Connection]]
# A push arrives within the window plus the time to check and send it.
ARRIVAL_TIMEOUT_S = DEFAULT_WINDOW_S + 8.0
# Long enough after a push for a second one of the same burst to have come.
QUIET_S = DEFAULT_WINDOW_S + 1.5


class Providers:
    """The local providers' control endpoint."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def pushes(self, key: str) -> list[dict[str, Any]]:
        response = await self._http.get("/pushes")
        response.raise_for_status()
        return [p for p in response.json()["pushes"] if p["key"] == key]

    async def wait_for(self, key: str, count: int = 1) -> list[dict[str, Any]]:
        deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
        while time.monotonic() < deadline:
            found = await self.pushes(key)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"{count} push(es) to {key} did not arrive; got {found}")

    async def fault(self, provider: str, key: str, **spec: object) -> None:
        response = await self._http.post("/faults", json={"provider": provider, "key": key, **spec})
        response.raise_for_status()

    async def clear(self, provider: str, key: str) -> None:
        response = await self._http.post("/faults/clear", json={"provider": provider, "key": key})
        response.raise_for_status()

    async def subscribe(self) -> push.WebPushSubscription:
        response = await self._http.post("/webpush/subscriptions")
        response.raise_for_status()
        return push.WebPushSubscription(**response.json())


@pytest.fixture
async def providers(cluster: LocalCluster) -> AsyncIterator[Providers]:
    async with httpx.AsyncClient(base_url=cluster.push_control_url, timeout=5.0) as http:
        yield Providers(http)


def fcm(token: str) -> push.PushCredential:
    return push.PushCredential(fcm=push.FcmRegistration(registration_token=token))


def apns(token: str) -> push.PushCredential:
    return push.PushCredential(
        apns=push.ApnsRegistration(
            device_token=token, topic=APNS_TOPIC, environment=push.APNS_ENVIRONMENT_SANDBOX
        )
    )


def fcm_token() -> str:
    return unique("fcm-token-").replace(".", "_") + "x" * 20


def apns_token() -> str:
    return unique("").encode().hex().ljust(64, "0")[:64]


async def register(
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
    user: str,
    device: str,
    credential: push.PushCredential,
    *,
    previews: bool = False,
) -> None:
    await directory.RegisterDevice(
        d.RegisterDeviceRequest(
            user_id=user, device_id=device, push=credential, show_previews=previews
        )
    )


async def acked(client: Connection, **send: str) -> client_pb2.AckFrame:
    client_msg_id = await client.send_text(**send)
    while True:
        frame = await client.recv_kind("ack")
        if frame.ack.client_msg_id == client_msg_id:
            return frame.ack


def message_ids(pushed: dict[str, Any]) -> list[int]:
    return [int(m) for m in pushed["data"]["message_ids"].split(",")]


async def test_an_offline_1to1_recipient_gets_one_push_per_window_without_text(
    open_client: OpenClient,
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
    providers: Providers,
    pg_pool: asyncpg.Pool,
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    await pg_pool.execute("UPDATE users SET display_name = 'Alice' WHERE user_id = $1", alice)
    token = fcm_token()
    await register(directory, bob, "phone", fcm(token))
    sender = await open_client(alice)
    sent = [await acked(sender, to_user=bob, body=f"secret {i}") for i in range(3)]

    (pushed,) = await providers.wait_for(token)
    assert pushed["provider"] == "fcm"
    assert message_ids(pushed) == [a.message_id for a in sent]
    assert pushed["data"]["conversation_id"] == sent[0].conversation_id
    assert pushed["collapse_key"] == sent[0].conversation_id
    # Previews are off: who and how many, never what.
    assert (pushed["title"], pushed["body"]) == ("Alice", "3 new messages")
    assert pushed["badge"] == 1
    assert "secret" not in str(pushed["request"])
    await asyncio.sleep(QUIET_S)
    assert len(await providers.pushes(token)) == 1

    # The next burst opens a new window: one more push, naming only it.
    later = await acked(sender, to_user=bob, body="again")
    _, second = await providers.wait_for(token, 2)
    assert message_ids(second) == [later.message_id]


async def test_group_members_offline_devices_are_pushed_and_connected_ones_are_not(
    cluster: LocalCluster,
    open_client: OpenClient,
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
    providers: Providers,
    pg_pool: asyncpg.Pool,
) -> None:
    ann, ben, cat = unique("ann"), unique("ben"), unique("cat")
    await add_users(pg_pool, ann, ben, cat)
    await pg_pool.execute("UPDATE users SET display_name = 'Ann' WHERE user_id = $1", ann)
    ben_phone, cat_phone = apns_token(), fcm_token()
    await register(directory, ben, "phone", apns(ben_phone))
    # Cat reads on her phone; her browser is closed and shows previews.
    await register(directory, cat, "phone", fcm(cat_phone))
    browser = await providers.subscribe()
    await register(directory, cat, "browser", push.PushCredential(web_push=browser), previews=True)
    async with cluster.channel("msgsvc") as channel:
        created = await group_service_pb2_grpc.GroupServiceStub(channel).CreateGroup(
            g.CreateGroupRequest(
                actor_user_id=ann,
                group=client_pb2.CreateGroupFrame(
                    client_group_id=unique("grp"), title="Climbing", member_user_ids=[ben, cat]
                ),
            )
        )
    group = created.group.conversation_id
    await open_client(cat, "phone")
    sender = await open_client(ann)
    first = await acked(sender, conversation=group, body="rope?")
    second = await acked(sender, conversation=group, body="bring the rope")

    (to_ben,) = await providers.wait_for(ben_phone)
    assert to_ben["provider"] == "apns"
    assert to_ben["request"]["headers"]["apns-topic"] == APNS_TOPIC
    assert (to_ben["title"], to_ben["body"]) == ("Climbing", "2 new messages from Ann")
    assert "rope" not in str(to_ben["request"])  # no previews on Ben's phone
    assert message_ids(to_ben) == [first.message_id, second.message_id]
    assert to_ben["badge"] == 1  # one conversation with unread messages

    browser_id = browser.endpoint.rsplit("/", 1)[1]
    (to_browser,) = await providers.wait_for(browser_id)
    # Decrypted by the local push service with the subscription's private key.
    assert to_browser["title"] == "Climbing"
    assert to_browser["body"] == "Ann: bring the rope (+1 more)"
    assert message_ids(to_browser) == [first.message_id, second.message_id]
    await asyncio.sleep(QUIET_S)
    assert await providers.pushes(cat_phone) == []  # connected: it got the messages live
    assert len(await providers.pushes(ben_phone)) == 1


async def test_a_device_that_connects_within_the_window_gets_no_push(
    open_client: OpenClient,
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
    providers: Providers,
    pg_pool: asyncpg.Pool,
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    token, witness = fcm_token(), fcm_token()
    await register(directory, bob, "phone", fcm(token))
    # Bob's tablet stays offline: its push shows the pipeline did run.
    await register(directory, bob, "tablet", fcm(witness))
    sender = await open_client(alice)
    await acked(sender, to_user=bob, body="are you there?")
    await open_client(bob, "phone")
    await providers.wait_for(witness)
    await asyncio.sleep(QUIET_S)
    assert await providers.pushes(token) == []


async def test_a_muted_conversation_is_not_pushed(
    open_client: OpenClient,
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
    providers: Providers,
    pg_pool: asyncpg.Pool,
) -> None:
    alice, carol, bob = unique("alice"), unique("carol"), unique("bob")
    await add_users(pg_pool, alice, carol, bob)
    token = fcm_token()
    await register(directory, bob, "phone", fcm(token))
    from_alice = await open_client(alice)
    first = await acked(from_alice, to_user=bob, body="hi")
    await providers.wait_for(token)
    # Bob mutes Alice's chat from another device, then goes offline again.
    bob_laptop = await open_client(bob, "laptop")
    reply = await bob_laptop.request(
        client_pb2.ClientFrame(
            mute_conversation=client_pb2.MuteConversationFrame(
                conversation_id=first.conversation_id, muted=True
            )
        )
    )
    assert reply.WhichOneof("kind") == "conversation_muted", reply
    await bob_laptop.close()
    muted = await acked(from_alice, to_user=bob, body="hello??")
    from_carol = await open_client(carol)
    unmuted = await acked(from_carol, to_user=bob, body="lunch?")
    _, second = await providers.wait_for(token, 2)
    assert message_ids(second) == [unmuted.message_id]
    await asyncio.sleep(QUIET_S)
    pushed = await providers.pushes(token)
    assert len(pushed) == 2
    assert all(muted.message_id not in message_ids(p) for p in pushed)


async def test_provider_errors_are_retried_and_a_dead_credential_is_removed(
    open_client: OpenClient,
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
    providers: Providers,
    pg_pool: asyncpg.Pool,
) -> None:
    alice, bob, dora, eve = unique("alice"), unique("bob"), unique("dora"), unique("eve")
    await add_users(pg_pool, alice, bob, dora, eve)
    throttled, failing = fcm_token(), apns_token()
    await register(directory, bob, "phone", fcm(throttled))
    await register(directory, dora, "phone", apns(failing))
    gone = await providers.subscribe()
    gone_id = gone.endpoint.rsplit("/", 1)[1]
    await register(directory, eve, "browser", push.PushCredential(web_push=gone))
    await providers.fault("fcm", throttled, status=429, retry_after="1", times=1)
    await providers.fault("apns", failing, status=503, reason="ServiceUnavailable", times=2)
    await providers.fault("webpush", gone_id, status=410, reason="Gone")
    sender = await open_client(alice)
    to_bob = await acked(sender, to_user=bob, body="one")
    to_dora = await acked(sender, to_user=dora, body="two")
    await acked(sender, to_user=eve, body="three")

    (retried,) = await providers.wait_for(throttled)
    assert message_ids(retried) == [to_bob.message_id]
    (recovered,) = await providers.wait_for(failing)
    assert message_ids(recovered) == [to_dora.message_id]
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    while True:
        listed = await directory.ListDevices(d.ListDevicesRequest(user_id=eve))
        (browser,) = [x for x in listed.devices if x.device_id == "browser"]
        if not browser.HasField("push"):
            break
        assert time.monotonic() < deadline, "the dead subscription is still registered"
        await asyncio.sleep(0.2)
    assert browser.push_platform == d.PUSH_PLATFORM_UNSPECIFIED
    assert await providers.pushes(gone_id) == []


async def test_a_notifysvc_killed_mid_batch_loses_no_job_and_holds_no_delivery_up(
    cluster: LocalCluster,
    open_client: OpenClient,
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
    providers: Providers,
    pg_pool: asyncpg.Pool,
) -> None:
    sender_user, reader = unique("sender"), unique("reader")
    users = [unique(f"r{i}") for i in range(12)]
    await add_users(pg_pool, sender_user, reader, *users)
    tokens = {user: fcm_token() for user in users}
    for user, token in tokens.items():
        await register(directory, user, "phone", fcm(token))
    sender = await open_client(sender_user)
    read_before = _jobs_read(cluster)
    sent = {user: await acked(sender, to_user=user, body="x") for user in users}
    # Killed once it has read the jobs, before their windows close.
    deadline = time.monotonic() + 10
    while _jobs_read(cluster) < read_before + len(users):
        assert time.monotonic() < deadline, "notifysvc did not read the jobs"
        await asyncio.sleep(0.05)
    notifysvc = cluster.processes["notifysvc"]
    notifysvc.kill()
    assert notifysvc.stop() == -signal.SIGKILL  # its exit status, as a crash leaves it

    # While it is down, a group message reaches its connected member live
    # (push jobs wait in their topic), and its job waits for the others.
    async with cluster.channel("msgsvc") as channel:
        created = await group_service_pb2_grpc.GroupServiceStub(channel).CreateGroup(
            g.CreateGroupRequest(
                actor_user_id=sender_user,
                group=client_pb2.CreateGroupFrame(
                    client_group_id=unique("grp"), title="Ops", member_user_ids=[reader, *users[:3]]
                ),
            )
        )
    group = created.group.conversation_id
    reading = await open_client(reader)
    in_group = await acked(sender, conversation=group, body="while it was down")
    while True:
        frame = await reading.recv_kind("deliver", timeout_s=10.0)
        if frame.deliver.message.message_id == in_group.message_id:
            break

    await asyncio.to_thread(cluster.restart, "notifysvc")
    for user, token in tokens.items():
        expected = {sent[user].message_id} | ({in_group.message_id} if user in users[:3] else set())
        pushed = await providers.wait_for(token, len(expected))
        assert expected == {m for p in pushed for m in message_ids(p)}
    # Its new life read them again: nothing had been committed past them.
    assert _jobs_read(cluster) >= len(users) + 1


def _jobs_read(cluster: LocalCluster) -> float:
    try:
        return _metric(cluster, "chatmesh_push_jobs_read_total")
    except httpx.HTTPError:  # restarting
        return 0.0


async def test_a_provider_that_hangs_or_answers_garbage_costs_only_its_own_push(
    cluster: LocalCluster,
    open_client: OpenClient,
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
    providers: Providers,
    pg_pool: asyncpg.Pool,
) -> None:
    alice, bob, dora, eve = unique("alice"), unique("bob"), unique("dora"), unique("eve")
    await add_users(pg_pool, alice, bob, dora, eve)
    hung, garbled, fine = fcm_token(), apns_token(), fcm_token()
    await register(directory, bob, "phone", fcm(hung))
    await register(directory, dora, "phone", apns(garbled))
    await register(directory, eve, "phone", fcm(fine))
    await providers.fault("fcm", hung, hang=True, times=1)
    await providers.fault("apns", garbled, status=400, body="<html>upstream error</html>", times=1)
    sender = await open_client(alice)
    to_bob = await acked(sender, to_user=bob, body="one")
    await acked(sender, to_user=dora, body="two")
    to_eve = await acked(sender, to_user=eve, body="three")

    (to_fine,) = await providers.wait_for(fine)
    assert message_ids(to_fine) == [to_eve.message_id]
    # Given up on after the provider timeout, then sent again.
    (after_hang,) = await providers.wait_for(hung)
    assert message_ids(after_hang) == [to_bob.message_id]
    # A 400 nobody can read is a permanent refusal of that push: dropped
    # (and logged), the credential kept; the next message is pushed.
    later = await acked(sender, to_user=dora, body="four")
    (to_dora,) = await providers.wait_for(garbled)
    assert message_ids(to_dora) == [later.message_id]
    listed = await directory.ListDevices(d.ListDevicesRequest(user_id=dora))
    assert [x.push.apns.device_token for x in listed.devices if x.device_id == "phone"] == [garbled]
    assert _metric(cluster, "chatmesh_pushes_total", 'outcome="rejected"') >= 1


async def test_a_malformed_job_record_is_dropped_and_the_jobs_after_it_are_sent(
    cluster: LocalCluster,
    open_client: OpenClient,
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
    providers: Providers,
    pg_pool: asyncpg.Pool,
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    token = fcm_token()
    await register(directory, bob, "phone", fcm(token))
    malformed_before = _metric(cluster, "chatmesh_push_skipped_total", 'reason="malformed"')
    topic = topic_name(cluster.config.key_prefix, "push-jobs")
    producer = Producer({"bootstrap.servers": cluster.kafka_bootstrap})
    # Into every partition: one of them is ahead of Bob's job.
    partitions = len(producer.list_topics(topic, timeout=10).topics[topic].partitions)
    for partition in range(partitions):
        for junk in (b"\xff\xfenot a job", b""):
            producer.produce(topic, junk, partition=partition)
    assert producer.flush(10) == 0
    sender = await open_client(alice)
    sent = await acked(sender, to_user=bob, body="still here")
    (pushed,) = await providers.wait_for(token)
    assert message_ids(pushed) == [sent.message_id]
    assert _metric(cluster, "chatmesh_push_skipped_total", 'reason="malformed"') >= (
        malformed_before + 2 * partitions
    )


def _metric(cluster: LocalCluster, name: str, label: str = "") -> float:
    text = httpx.get(cluster.ops_url("notifysvc"), timeout=2.0).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and label in line
    )
