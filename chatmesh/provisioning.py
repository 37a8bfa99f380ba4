"""Provisioning users and devices from operator and developer tools.

They call msgsvc's ``DirectoryService`` over gRPC, as internal teams do (with
a ``client/<name>`` mesh certificate; every call is audited), so they
validate and store exactly as it does and work against any deployment that
can be reached (a port-forward will do). Both are idempotent.
"""

from __future__ import annotations

import grpc

from chatmesh.errors import reason_of
from chatmesh.grpc_server import mesh_channel
from chatmesh.mesh.credentials import MeshTls
from chatmesh.v1 import directory_service_pb2, directory_service_pb2_grpc

CALL_TIMEOUT_S = 10.0


class ProvisioningError(Exception):
    """The directory refused or could not be reached; ``reason`` says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


async def add_user(tls: MeshTls, msgsvc_addr: str, user_id: str, display_name: str) -> bool:
    """Registers a user; returns False if it already existed (left unchanged)."""
    async with mesh_channel(tls, msgsvc_addr, "msgsvc") as channel:
        stub = directory_service_pb2_grpc.DirectoryServiceStub(channel)
        try:
            response = await stub.CreateUser(
                directory_service_pb2.CreateUserRequest(user_id=user_id, display_name=display_name),
                timeout=CALL_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as exc:
            raise _refused(exc) from exc
        return bool(response.created)


async def register_device(tls: MeshTls, msgsvc_addr: str, user_id: str, device_id: str) -> None:
    """Registers the device unless it exists: an existing device keeps its
    push token. Raises ``ProvisioningError`` (``USER_NOT_FOUND`` for an
    unknown user)."""
    async with mesh_channel(tls, msgsvc_addr, "msgsvc") as channel:
        stub = directory_service_pb2_grpc.DirectoryServiceStub(channel)
        try:
            listed = await stub.ListDevices(
                directory_service_pb2.ListDevicesRequest(user_id=user_id),
                timeout=CALL_TIMEOUT_S,
            )
            if any(d.device_id == device_id for d in listed.devices):
                return
            await stub.RegisterDevice(
                directory_service_pb2.RegisterDeviceRequest(user_id=user_id, device_id=device_id),
                timeout=CALL_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as exc:
            raise _refused(exc) from exc


def _refused(exc: grpc.aio.AioRpcError) -> ProvisioningError:
    return ProvisioningError(reason_of(exc) or exc.code().name, exc.details() or "")
