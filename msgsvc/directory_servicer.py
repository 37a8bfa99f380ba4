"""gRPC edge of the account directory: proto in, ``Accounts`` calls, proto out."""

from __future__ import annotations

import grpc

from chatmesh.failures import abort_with
from chatmesh.v1 import directory_service_pb2, directory_service_pb2_grpc
from msgsvc.accounts import Accounts
from msgsvc.push_protos import credential_from_proto, credential_proto
from msgsvc.push_settings import PushSettings
from msgsvc.storage.accounts import DeviceRecord, UserRecord

# The stored names of the proto platforms; UNSPECIFIED is "no push" (None).
_PLATFORM_NAMES: dict[directory_service_pb2.PushPlatform, str] = {
    directory_service_pb2.PUSH_PLATFORM_FCM: "fcm",
    directory_service_pb2.PUSH_PLATFORM_APNS: "apns",
    directory_service_pb2.PUSH_PLATFORM_WEBPUSH: "webpush",
}
_PLATFORM_VALUES = {name: value for value, name in _PLATFORM_NAMES.items()}


class DirectoryServicer(directory_service_pb2_grpc.DirectoryServiceServicer):
    def __init__(self, accounts: Accounts, push_settings: PushSettings) -> None:
        self._accounts = accounts
        self._push_settings = push_settings

    async def CreateUser(
        self, request: directory_service_pb2.CreateUserRequest, context: grpc.aio.ServicerContext
    ) -> directory_service_pb2.CreateUserResponse:
        try:
            user, created = await self._accounts.create_user(request.user_id, request.display_name)
        except Exception as exc:
            await abort_with(context, exc)
        return directory_service_pb2.CreateUserResponse(user=_user_proto(user), created=created)

    async def RegisterDevice(
        self,
        request: directory_service_pb2.RegisterDeviceRequest,
        context: grpc.aio.ServicerContext,
    ) -> directory_service_pb2.RegisterDeviceResponse:
        try:
            device = await self._accounts.register_device(
                request.user_id,
                request.device_id,
                _platform_name(request.push_platform),
                request.push_token,
                credential=credential_from_proto(request.push)
                if request.HasField("push")
                else None,
                show_previews=request.show_previews if request.HasField("show_previews") else None,
            )
        except Exception as exc:
            await abort_with(context, exc)
        return directory_service_pb2.RegisterDeviceResponse(device=_device_proto(device))

    async def ListDevices(
        self, request: directory_service_pb2.ListDevicesRequest, context: grpc.aio.ServicerContext
    ) -> directory_service_pb2.ListDevicesResponse:
        try:
            devices = await self._accounts.list_devices(request.user_id)
        except Exception as exc:
            await abort_with(context, exc)
        return directory_service_pb2.ListDevicesResponse(
            devices=[_device_proto(d) for d in devices]
        )

    async def RemoveDevice(
        self, request: directory_service_pb2.RemoveDeviceRequest, context: grpc.aio.ServicerContext
    ) -> directory_service_pb2.RemoveDeviceResponse:
        try:
            removed = await self._accounts.remove_device(request.user_id, request.device_id)
        except Exception as exc:
            await abort_with(context, exc)
        return directory_service_pb2.RemoveDeviceResponse(removed=removed)

    async def SetConversationMute(
        self,
        request: directory_service_pb2.SetConversationMuteRequest,
        context: grpc.aio.ServicerContext,
    ) -> directory_service_pb2.SetConversationMuteResponse:
        try:
            mute = await self._push_settings.mute(
                request.user_id, request.conversation_id, request.muted, request.until_ms
            )
        except Exception as exc:
            await abort_with(context, exc)
        return directory_service_pb2.SetConversationMuteResponse(
            muted=mute.muted, until_ms=mute.until_ms
        )


def _platform_name(platform: directory_service_pb2.PushPlatform) -> str | None:
    if platform == directory_service_pb2.PUSH_PLATFORM_UNSPECIFIED:
        return None
    # An enum value this build does not know (proto3 enums are open) is
    # passed through as a name the domain layer refuses, with a typed error.
    return _PLATFORM_NAMES.get(platform, f"unknown:{platform}")


def _user_proto(user: UserRecord) -> directory_service_pb2.User:
    return directory_service_pb2.User(
        user_id=user.user_id, display_name=user.display_name, created_at_ms=user.created_at_ms
    )


def _device_proto(device: DeviceRecord) -> directory_service_pb2.Device:
    return directory_service_pb2.Device(
        user_id=device.user_id,
        device_id=device.device_id,
        push_platform=_PLATFORM_VALUES.get(
            device.push_platform or "", directory_service_pb2.PUSH_PLATFORM_UNSPECIFIED
        ),
        push_token=device.push_token or "",
        created_at_ms=device.created_at_ms,
        push=credential_proto(device),
        show_previews=device.show_previews,
    )
