"""Devices register structured push credentials through the DirectoryService,
checked for their provider; and choose whether pushes show previews."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chatmesh.devcluster import LocalCluster
from chatmesh.errors import reason_of
from chatmesh.v1 import directory_service_pb2 as d
from chatmesh.v1 import directory_service_pb2_grpc
from tests.conftest import unique

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


@pytest.fixture
async def directory(
    cluster: LocalCluster,
) -> AsyncIterator[directory_service_pb2_grpc.DirectoryServiceAsyncStub]:
    async with cluster.channel("msgsvc") as channel:
        yield directory_service_pb2_grpc.DirectoryServiceStub(channel)  # type: ignore[misc]


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
        "android": d.PushCredential(fcm=d.FcmRegistration(registration_token="f" * 40 + ":A_b-1")),
        "iphone": d.PushCredential(
            apns=d.ApnsRegistration(
                device_token=APNS_TOKEN,
                topic="com.example.chat",
                environment=d.APNS_ENVIRONMENT_SANDBOX,
            )
        ),
        "browser": d.PushCredential(
            web_push=d.WebPushSubscription(
                endpoint="https://push.example.net/send/abc", p256dh=p256dh, auth=auth
            )
        ),
    }
    for device, push in credentials.items():
        stored = await directory.RegisterDevice(
            d.RegisterDeviceRequest(user_id=user, device_id=device, push=push)
        )
        assert stored.device.push == push
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
    fcm = d.PushCredential(fcm=d.FcmRegistration(registration_token="t" * 30))
    opted = await directory.RegisterDevice(
        d.RegisterDeviceRequest(user_id=user, device_id="phone", push=fcm, show_previews=True)
    )
    assert opted.device.show_previews
    # A new token, the setting untouched.
    moved = await directory.RegisterDevice(
        d.RegisterDeviceRequest(
            user_id=user,
            device_id="phone",
            push=d.PushCredential(fcm=d.FcmRegistration(registration_token="u" * 30)),
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
    "push",
    [
        d.PushCredential(fcm=d.FcmRegistration(registration_token="short")),
        d.PushCredential(fcm=d.FcmRegistration(registration_token="x" * 30 + " spaces")),
        d.PushCredential(
            apns=d.ApnsRegistration(
                device_token="not-hex", topic="com.example", environment=d.APNS_ENVIRONMENT_SANDBOX
            )
        ),
        d.PushCredential(
            apns=d.ApnsRegistration(device_token=APNS_TOKEN, topic="com.example")
        ),  # no environment
        d.PushCredential(
            apns=d.ApnsRegistration(
                device_token=APNS_TOKEN, topic="", environment=d.APNS_ENVIRONMENT_PRODUCTION
            )
        ),
        d.PushCredential(
            web_push=d.WebPushSubscription(
                endpoint="http://push.example.net/x", p256dh=GOOD_P256DH, auth=GOOD_AUTH
            )
        ),
        d.PushCredential(
            web_push=d.WebPushSubscription(
                endpoint="https://push.example.net/x",
                p256dh=_b64url(b"\x04" + b"1" * 64),
                auth=GOOD_AUTH,
            )
        ),  # not a point on the curve
        d.PushCredential(
            web_push=d.WebPushSubscription(
                endpoint="https://push.example.net/x", p256dh=GOOD_P256DH, auth=_b64url(b"short")
            )
        ),
        d.PushCredential(),  # no provider
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
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub, push: d.PushCredential
) -> None:
    user = await _user(directory)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await directory.RegisterDevice(
            d.RegisterDeviceRequest(user_id=user, device_id="phone", push=push)
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
                push=d.PushCredential(fcm=d.FcmRegistration(registration_token="t" * 30)),
            )
        )
    assert reason_of(refused.value) == "PUSH_CREDENTIAL_TWICE"
