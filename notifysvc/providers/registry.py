"""The configured providers, each behind its guard, chosen by a device's platform."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from notifysvc.devices import APNS, FCM, WEBPUSH, PushDevice
from notifysvc.guard import GuardPolicy, ProviderGuard
from notifysvc.providers.apns import ApnsClient, ApnsCredentials, ApnsDevice
from notifysvc.providers.fcm import FcmClient, ServiceAccount
from notifysvc.providers.http import HttpOptions, make_client
from notifysvc.providers.message import Outcome, PushMessage, Rejected
from notifysvc.providers.webpush import Subscription, VapidKey, WebPushClient
from notifysvc.settings import ProviderSettings

# Outcome for a device whose provider this deployment has no credentials for.
NOT_CONFIGURED = 0
DEFAULT_POLICY = GuardPolicy()


@dataclass(slots=True)
class Providers:
    fcm: ProviderGuard[str] | None = None
    # By APNs environment: "production" and "sandbox" are separate services.
    apns: Mapping[str, ProviderGuard[ApnsDevice]] | None = None
    webpush: ProviderGuard[Subscription] | None = None

    async def send(self, device: PushDevice, message: PushMessage) -> Outcome:
        if device.platform == FCM and self.fcm is not None:
            return await self.fcm.send(device.token, message)
        if device.platform == APNS and self.apns is not None:
            guard = self.apns.get(device.params.get("environment", ""))
            if guard is not None:
                return await guard.send(ApnsDevice(device.token, device.params["topic"]), message)
        if device.platform == WEBPUSH and self.webpush is not None:
            return await self.webpush.send(
                Subscription(device.token, device.params["p256dh"], device.params["auth"]),
                message,
            )
        return Rejected(NOT_CONFIGURED, f"no {device.platform} credentials configured")

    async def aclose(self) -> None:
        for guard in [self.fcm, self.webpush, *(self.apns or {}).values()]:
            if guard is not None:
                await guard.aclose()


def providers_from(settings: ProviderSettings, policy: GuardPolicy = DEFAULT_POLICY) -> Providers:
    providers = Providers()
    # As many connections as requests the guard lets through: none waits in
    # the client's pool, whose queue costs time in proportion to its length.
    http = HttpOptions(
        timeout_s=settings.request_timeout_s,
        max_connections=policy.max_in_flight,
        max_keepalive_connections=policy.max_in_flight,
    )
    if settings.fcm is not None:
        account = ServiceAccount.from_json(settings.fcm.service_account_file.read_text())
        providers.fcm = ProviderGuard(
            FcmClient(
                account,
                make_client(http, http2=False),
                base_url=settings.fcm.url,
            ),
            policy,
            name="fcm",
        )
    if settings.apns is not None:
        apns = settings.apns
        verify = None if apns.ca_file is None else ssl.create_default_context(cafile=apns.ca_file)
        key = apns.key_file.read_text()
        providers.apns = {
            environment: ProviderGuard(
                ApnsClient(
                    ApnsCredentials(apns.team_id, apns.key_id, key, sandbox=sandbox),
                    make_client(dataclasses.replace(http, verify=verify), http2=True),
                    base_url=apns.sandbox_url if sandbox else apns.production_url,
                ),
                policy,
                name=f"apns-{environment}",
            )
            for environment, sandbox in (("production", False), ("sandbox", True))
        }
    if settings.webpush is not None:
        vapid = VapidKey(settings.webpush.vapid_key_file.read_text(), settings.webpush.subject)
        providers.webpush = ProviderGuard(
            WebPushClient(vapid, make_client(http, http2=False)),
            policy,
            name="webpush",
        )
    return providers
