"""The DirectoryService of msgsvc over gRPC: users, devices, typed failures."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from chatmesh import __main__ as cli
from chatmesh.auth import TokenVerifier, generate_keypair
from chatmesh.devcluster import LocalCluster
from chatmesh.errors import reason_of
from chatmesh.v1 import directory_service_pb2, directory_service_pb2_grpc
from msgsvc.accounts import MAX_DISPLAY_NAME_CHARS, MAX_PUSH_TOKEN_CHARS
from tests.conftest import unique

FCM = directory_service_pb2.PUSH_PLATFORM_FCM
APNS = directory_service_pb2.PUSH_PLATFORM_APNS
NO_PUSH = directory_service_pb2.PUSH_PLATFORM_UNSPECIFIED


def _register(
    user_id: str, device_id: str, platform: int = NO_PUSH, token: str = ""
) -> directory_service_pb2.RegisterDeviceRequest:
    return directory_service_pb2.RegisterDeviceRequest(
        user_id=user_id,
        device_id=device_id,
        push_platform=platform,  # type: ignore[arg-type]
        push_token=token,
    )


async def test_create_user_is_idempotent(
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
) -> None:
    alice = unique("alice")
    first = await directory.CreateUser(
        directory_service_pb2.CreateUserRequest(user_id=alice, display_name="Alice")
    )
    again = await directory.CreateUser(
        directory_service_pb2.CreateUserRequest(user_id=alice, display_name="Renamed")
    )
    assert first.created and not again.created
    assert again.user == first.user
    assert (first.user.user_id, first.user.display_name) == (alice, "Alice")
    assert first.user.created_at_ms > 0


async def test_device_lifecycle(
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
) -> None:
    alice = unique("alice")
    await directory.CreateUser(directory_service_pb2.CreateUserRequest(user_id=alice))
    phone = (await directory.RegisterDevice(_register(alice, "phone", FCM, "fcm-1"))).device
    assert (phone.user_id, phone.device_id) == (alice, "phone")
    assert (phone.push_platform, phone.push_token) == (FCM, "fcm-1")
    laptop = (await directory.RegisterDevice(_register(alice, "laptop"))).device
    assert (laptop.push_platform, laptop.push_token) == (NO_PUSH, "")

    moved = (await directory.RegisterDevice(_register(alice, "phone", APNS, "apns-1"))).device
    assert (moved.push_platform, moved.push_token) == (APNS, "apns-1")
    assert moved.created_at_ms == phone.created_at_ms

    listed = await directory.ListDevices(directory_service_pb2.ListDevicesRequest(user_id=alice))
    assert list(listed.devices) == [laptop, moved]  # ordered by device_id

    cleared = (await directory.RegisterDevice(_register(alice, "phone"))).device
    assert (cleared.push_platform, cleared.push_token) == (NO_PUSH, "")

    remove = directory_service_pb2.RemoveDeviceRequest(user_id=alice, device_id="phone")
    assert (await directory.RemoveDevice(remove)).removed
    assert not (await directory.RemoveDevice(remove)).removed
    listed = await directory.ListDevices(directory_service_pb2.ListDevicesRequest(user_id=alice))
    assert [d.device_id for d in listed.devices] == ["laptop"]


INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("method", "request_for", "code", "reason"),
    [
        (
            "CreateUser",
            lambda u: directory_service_pb2.CreateUserRequest(user_id="no spaces"),
            INVALID,
            "INVALID_USER_ID",
        ),
        (
            "CreateUser",
            lambda u: directory_service_pb2.CreateUserRequest(
                user_id=u, display_name="n" * (MAX_DISPLAY_NAME_CHARS + 1)
            ),
            INVALID,
            "DISPLAY_NAME_TOO_LONG",
        ),
        ("RegisterDevice", lambda u: _register(u, "bad/id"), INVALID, "INVALID_DEVICE_ID"),
        ("RegisterDevice", lambda u: _register(u, "phone", FCM), INVALID, "MISSING_PUSH_TOKEN"),
        (
            "RegisterDevice",
            lambda u: _register(u, "phone", NO_PUSH, "token"),
            INVALID,
            "PUSH_TOKEN_WITHOUT_PLATFORM",
        ),
        (
            "RegisterDevice",
            lambda u: _register(u, "phone", 99, "token"),
            INVALID,
            "UNKNOWN_PUSH_PLATFORM",
        ),
        (
            "RegisterDevice",
            lambda u: _register(u, "phone", APNS, "t" * (MAX_PUSH_TOKEN_CHARS + 1)),
            INVALID,
            "PUSH_TOKEN_TOO_LONG",
        ),
        (
            "RegisterDevice",
            lambda u: _register(unique("ghost"), "phone"),
            NOT_FOUND,
            "USER_NOT_FOUND",
        ),
        (
            "ListDevices",
            lambda u: directory_service_pb2.ListDevicesRequest(user_id=unique("ghost")),
            NOT_FOUND,
            "USER_NOT_FOUND",
        ),
        (
            "ListDevices",
            lambda u: directory_service_pb2.ListDevicesRequest(user_id=""),
            INVALID,
            "INVALID_USER_ID",
        ),
        (
            "RemoveDevice",
            lambda u: directory_service_pb2.RemoveDeviceRequest(
                user_id=unique("ghost"), device_id="phone"
            ),
            NOT_FOUND,
            "USER_NOT_FOUND",
        ),
        (
            "RemoveDevice",
            lambda u: directory_service_pb2.RemoveDeviceRequest(user_id=u, device_id=""),
            INVALID,
            "INVALID_DEVICE_ID",
        ),
    ],
)
async def test_failures_carry_a_status_and_a_reason(
    directory: directory_service_pb2_grpc.DirectoryServiceAsyncStub,
    method: str,
    request_for,  # type: ignore[no-untyped-def]
    code: grpc.StatusCode,
    reason: str,
) -> None:
    alice = unique("alice")
    await directory.CreateUser(directory_service_pb2.CreateUserRequest(user_id=alice))
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await getattr(directory, method)(request_for(alice))
    assert failed.value.code() == code
    assert reason_of(failed.value) == reason
    # Nothing was half-done: the valid user still has no devices.
    listed = await directory.ListDevices(directory_service_pb2.ListDevicesRequest(user_id=alice))
    assert list(listed.devices) == []


def test_the_cli_provisions_through_the_directory_and_registers_every_minted_token(
    cluster: LocalCluster,
    tmp_path,
    monkeypatch,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    private_key, public_key = generate_keypair(tmp_path)
    monkeypatch.setenv("CHATMESH_MSGSVC_ADDR", cluster.grpc_addr("msgsvc"))
    monkeypatch.setenv("CHATMESH_JWT_PRIVATE_KEY_FILE", str(private_key))
    monkeypatch.setenv("CHATMESH_MESH_TLS_DIR", str(cluster.client_tls("ops").directory))
    alice = unique("alice")

    with pytest.raises(SystemExit, match="USER_NOT_FOUND"):
        cli.main(["mint-token", alice, "phone"])
    cli.main(["add-user", alice, "--name", "Alice"])
    cli.main(["add-user", alice])
    assert capsys.readouterr().out.splitlines() == [
        f"user {alice} created",
        f"user {alice} already exists",
    ]
    with pytest.raises(SystemExit, match="INVALID_USER_ID"):
        cli.main(["add-user", "not valid"])

    async def directory_call(call: str, request: object) -> object:
        async with cluster.channel("msgsvc") as channel:
            stub = directory_service_pb2_grpc.DirectoryServiceStub(channel)
            return await getattr(stub, call)(request)

    cli.main(["mint-token", alice, "phone"])
    asyncio.run(directory_call("RegisterDevice", _register(alice, "phone", FCM, "t")))
    cli.main(["mint-token", alice, "phone"])  # idempotent: keeps the push token
    tokens = capsys.readouterr().out.split()
    assert len(tokens) == 2
    verifier = TokenVerifier(public_key.read_bytes())
    assert {(i.user_id, i.device_id) for i in map(verifier.verify, tokens)} == {(alice, "phone")}
    listed = asyncio.run(
        directory_call("ListDevices", directory_service_pb2.ListDevicesRequest(user_id=alice))
    )
    assert [(d.device_id, d.push_token) for d in listed.devices] == [("phone", "t")]  # type: ignore[attr-defined]
