"""Devices register structured push credentials through the DirectoryService,
checked for their provider; and choose whether pushes show previews."""

from __future__ import annotations

import base64
import time

import asyncpg
import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection
from chatmesh.client.connection import text_send
from chatmesh.devcluster import LocalCluster
from chatmesh.errors import reason_of
from chatmesh.v1 import client_pb2, directory_service_pb2_grpc
from chatmesh.v1 import directory_service_pb2 as d
from chatmesh.v1 import push_pb2 as push
from tests.conftest import add_users, unique

APNS_TOKEN = "ab" * 32


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _subscription_keys() -> tuple[str, str]:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return _b64url(point), _b64url(b"0123456789abcdef")


async def _user(directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub) -> str:
    user = unique("pushy")
    await directory.CreateUser(d.CreateUserRequest(user_id=user))
    return user


async def test_each_provider_registers_and_reads_back(
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
) -> None:
    user = await _user(directory)
    p256dh, auth = _subscription_keys()
    credentials = {
        "android": push.PushCredential(
            fcm=push.FcmRegistration(registration_token="f" * 40 + ":A_b-1")
        ),
        "iphone": push.PushCredential(
            apns=push.ApnsRegistration(
                device_token=APNS_TOKEN,
                topic="com.example.chat",
                environment=push.APNS_ENVIRONMENT_SANDBOX,
            )
        ),
        "browser": push.PushCredential(
            web_push=push.WebPushSubscription(
                endpoint="https://push.example.net/send/abc", p256dh=p256dh, auth=auth
            )
        ),
    }
    for device, credential in credentials.items():
        stored = await directory.RegisterDevice(
            d.RegisterDeviceRequest(user_id=user, device_id=device, push=credential)
        )
        assert stored.device.push == credential
        assert not stored.device.show_previews  # off until the device opts in
    listed = await directory.ListDevices(d.ListDevicesRequest(user_id=user))
    assert {x.device_id: x.push for x in listed.devices} == credentials
    platforms = {x.device_id: x.push_platform for x in listed.devices}
    assert platforms == {
        "android": d.PUSH_PLATFORM_FCM,
        "iphone": d.PUSH_PLATFORM_APNS,
        "browser": d.PUSH_PLATFORM_WEBPUSH,
    }


async def test_previews_are_opt_in_and_kept_until_changed(
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
) -> None:
    user = await _user(directory)
    fcm = push.PushCredential(fcm=push.FcmRegistration(registration_token="t" * 30))
    opted = await directory.RegisterDevice(
        d.RegisterDeviceRequest(user_id=user, device_id="phone", push=fcm, show_previews=True)
    )
    assert opted.device.show_previews
    # A new token, the setting untouched.
    moved = await directory.RegisterDevice(
        d.RegisterDeviceRequest(
            user_id=user,
            device_id="phone",
            push=push.PushCredential(fcm=push.FcmRegistration(registration_token="u" * 30)),
        )
    )
    assert moved.device.show_previews
    off = await directory.RegisterDevice(
        d.RegisterDeviceRequest(user_id=user, device_id="phone", push=fcm, show_previews=False)
    )
    assert not off.device.show_previews


_, GOOD_AUTH = _subscription_keys()
GOOD_P256DH, _ = _subscription_keys()


@pytest.mark.parametrize(
    "credential",
    [
        push.PushCredential(fcm=push.FcmRegistration(registration_token="short")),
        push.PushCredential(fcm=push.FcmRegistration(registration_token="x" * 30 + " spaces")),
        push.PushCredential(
            apns=push.ApnsRegistration(
                device_token="not-hex",
                topic="com.example",
                environment=push.APNS_ENVIRONMENT_SANDBOX,
            )
        ),
        push.PushCredential(
            apns=push.ApnsRegistration(device_token=APNS_TOKEN, topic="com.example")
        ),  # no environment
        push.PushCredential(
            apns=push.ApnsRegistration(
                device_token=APNS_TOKEN, topic="", environment=push.APNS_ENVIRONMENT_PRODUCTION
            )
        ),
        push.PushCredential(
            web_push=push.WebPushSubscription(
                endpoint="http://push.example.net/x", p256dh=GOOD_P256DH, auth=GOOD_AUTH
            )
        ),
        push.PushCredential(
            web_push=push.WebPushSubscription(
                endpoint="https://push.example.net/x",
                p256dh=_b64url(b"\x04" + b"1" * 64),
                auth=GOOD_AUTH,
            )
        ),  # not a point on the curve
        push.PushCredential(
            web_push=push.WebPushSubscription(
                endpoint="https://push.example.net/x", p256dh=GOOD_P256DH, auth=_b64url(b"short")
            )
        ),
        push.PushCredential(),  # no provider
    ],
    ids=[
        "fcm-short",
        "fcm-charset",
        "apns-not-hex",
        "apns-no-environment",
        "apns-no-topic",
        "webpush-plain-http",
        "webpush-not-a-point",
        "webpush-short-auth",
        "empty",
    ],
)
async def test_malformed_credentials_are_refused_and_nothing_is_stored(
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
    credential: push.PushCredential,
) -> None:
    user = await _user(directory)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await directory.RegisterDevice(
            d.RegisterDeviceRequest(user_id=user, device_id="phone", push=credential)
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(refused.value) == "INVALID_PUSH_CREDENTIAL"
    listed = await directory.ListDevices(d.ListDevicesRequest(user_id=user))
    assert list(listed.devices) == []


async def test_a_credential_and_a_bare_token_together_are_refused(
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
) -> None:
    user = await _user(directory)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await directory.RegisterDevice(
            d.RegisterDeviceRequest(
                user_id=user,
                device_id="phone",
                push_platform=d.PUSH_PLATFORM_FCM,
                push_token="legacy",
                push=push.PushCredential(fcm=push.FcmRegistration(registration_token="t" * 30)),
            )
        )
    assert reason_of(refused.value) == "PUSH_CREDENTIAL_TWICE"


async def test_a_device_registers_its_own_push_and_mutes_a_conversation(
    cluster: LocalCluster,
    issuer: TokenIssuer,
    pg_pool: asyncpg.Pool,
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
) -> None:
    alice, bob, eve = unique("alice"), unique("bob"), unique("eve")
    await add_users(pg_pool, alice, bob, eve)
    alice_token = issuer.mint(Identity(alice, "phone"), ttl_s=600)
    phone = await Connection.open(cluster.edge_url, alice_token)
    intruder = await Connection.open(
        cluster.edge_url, issuer.mint(Identity(eve, "phone"), ttl_s=600)
    )
    try:
        credential = push.PushCredential(
            fcm=push.FcmRegistration(registration_token="r" * 24 + ":tok")
        )
        registered = await phone.request(
            client_pb2.ClientFrame(
                register_push=client_pb2.RegisterPushFrame(push=credential, show_previews=True)
            )
        )
        stored = registered.push_registered
        assert (stored.has_push, stored.show_previews) == (True, True)
        listed = await directory.ListDevices(d.ListDevicesRequest(user_id=alice))
        assert {x.device_id: x.push for x in listed.devices}["phone"] == credential

        acked = await phone.request(text_send("m1", bob, None, "hi"))
        conversation = acked.ack.conversation_id
        until = int(time.time() * 1000) + 3_600_000

        def mute(muted: bool, until_ms: int = 0) -> client_pb2.ClientFrame:
            return client_pb2.ClientFrame(
                mute_conversation=client_pb2.MuteConversationFrame(
                    conversation_id=conversation, muted=muted, until_ms=until_ms
                )
            )

        muted = await phone.request(mute(True, until))
        assert (muted.conversation_muted.muted, muted.conversation_muted.until_ms) == (True, until)
        assert (
            await pg_pool.fetchval(
                "SELECT count(*) FROM conversation_mutes WHERE user_id = $1", alice
            )
            == 1
        )
        past = await phone.request(mute(True, 1_000))
        assert past.error.reason == "INVALID_MUTE_UNTIL"
        refused = await intruder.request(mute(True))
        assert refused.error.reason == "CONVERSATION_NOT_FOUND"
        unmuted = await phone.request(mute(False))
        assert not unmuted.conversation_muted.muted
        # Internal teams do the same through the DirectoryService.
        forever = await directory.SetConversationMute(
            d.SetConversationMuteRequest(user_id=bob, conversation_id=conversation, muted=True)
        )
        assert (forever.muted, forever.until_ms) == (True, 0)
        rows = await pg_pool.fetch(
            "SELECT user_id, muted_until FROM conversation_mutes WHERE conversation_id = $1",
            conversation,
        )
        assert [(r["user_id"], r["muted_until"]) for r in rows] == [(bob, None)]

        # Without a credential the device gets no pushes any more.
        cleared = await phone.request(
            client_pb2.ClientFrame(register_push=client_pb2.RegisterPushFrame())
        )
        assert not cleared.push_registered.has_push
        assert cleared.push_registered.show_previews  # unchanged
    finally:
        await phone.close()
        await intruder.close()
