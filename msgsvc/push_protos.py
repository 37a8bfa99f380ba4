"""Push credentials between their protobuf form and the domain's."""

from __future__ import annotations

from chatmesh.errors import InvalidArgument
from chatmesh.v1 import push_pb2
from msgsvc import push_credentials
from msgsvc.push_credentials import PushCredential
from msgsvc.storage.accounts import DeviceRecord

_APNS_ENVIRONMENTS: dict[push_pb2.ApnsEnvironment, str] = {
    push_pb2.APNS_ENVIRONMENT_PRODUCTION: "production",
    push_pb2.APNS_ENVIRONMENT_SANDBOX: "sandbox",
}
_APNS_ENVIRONMENT_VALUES = {name: value for value, name in _APNS_ENVIRONMENTS.items()}


def credential_from_proto(push: push_pb2.PushCredential) -> PushCredential:
    """The credential a request names, checked for its provider."""
    which = push.WhichOneof("provider")
    if which == "fcm":
        return push_credentials.fcm(push.fcm.registration_token)
    if which == "apns":
        return push_credentials.apns(
            push.apns.device_token,
            push.apns.topic,
            _APNS_ENVIRONMENTS.get(push.apns.environment, ""),
        )
    if which == "web_push":
        sub = push.web_push
        return push_credentials.web_push(sub.endpoint, sub.p256dh, sub.auth)
    raise InvalidArgument("INVALID_PUSH_CREDENTIAL", "push names no provider")


def _detailed_proto(device: DeviceRecord) -> push_pb2.PushCredential | None:
    params = device.push_params
    if params is None or device.push_token is None:
        return None  # no push, or a bare token registered without its details
    if device.push_platform == push_credentials.APNS:
        return push_pb2.PushCredential(
            apns=push_pb2.ApnsRegistration(
                device_token=device.push_token,
                topic=params["topic"],
                environment=_APNS_ENVIRONMENT_VALUES[params["environment"]],
            )
        )
    if device.push_platform == push_credentials.WEBPUSH:
        return push_pb2.PushCredential(
            web_push=push_pb2.WebPushSubscription(
                endpoint=device.push_token, p256dh=params["p256dh"], auth=params["auth"]
            )
        )
    return None


def credential_proto(device: DeviceRecord) -> push_pb2.PushCredential | None:
    """The device's credential; None without push."""
    return _detailed_proto(device) or _fcm_proto(device)


def _fcm_proto(device: DeviceRecord) -> push_pb2.PushCredential | None:
    if device.push_platform == push_credentials.FCM and device.push_token:
        return push_pb2.PushCredential(
            fcm=push_pb2.FcmRegistration(registration_token=device.push_token)
        )
    return None
