"""A device as notifysvc sees it: where to push and what it may show."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

FCM, APNS, WEBPUSH = "fcm", "apns", "webpush"


@dataclass(frozen=True, slots=True)
class PushDevice:
    user_id: str
    device_id: str
    platform: str  # fcm | apns | webpush
    # FCM registration token, APNs device token, or Web Push endpoint.
    token: str
    # APNs topic and environment; Web Push p256dh and auth.
    params: Mapping[str, str] = field(default_factory=dict)
    show_previews: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.user_id, self.device_id)
