"""Only registered devices may act.

A token names a (user, device) and is trusted for its lifetime; removing the
device (a lost phone) must still stop it at once. The check runs on every
request from a device, so positive answers are cached: a removal is
announced on the revocations channel and ``forget`` drops it on every
instance within moments; if that announcement is missed, ``forget_all``
(after a lost subscription) or ``POSITIVE_TTL_MS`` bound how long it is
trusted. Negative answers are not cached, so a device registered a moment
ago is let in at once.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from chatmesh.clock import Clock
from chatmesh.errors import PermissionDenied

POSITIVE_TTL_MS = 60_000
MAX_CACHED_DEVICES = 100_000


class DeviceRegistry(Protocol):
    async def device_exists(self, user_id: str, device_id: str) -> bool: ...


class DeviceCheck:
    def __init__(
        self, registry: DeviceRegistry, clock: Clock, *, max_entries: int = MAX_CACHED_DEVICES
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._max_entries = max_entries
        self._confirmed: OrderedDict[tuple[str, str], int] = OrderedDict()

    async def require(self, user_id: str, device_id: str) -> None:
        """Raises PermissionDenied(DEVICE_NOT_REGISTERED) unless registered."""
        key = (user_id, device_id)
        now = self._clock.now_ms()
        confirmed_at = self._confirmed.get(key)
        if confirmed_at is not None and now - confirmed_at < POSITIVE_TTL_MS:
            return
        if not device_id or not await self._registry.device_exists(user_id, device_id):
            self._confirmed.pop(key, None)
            raise PermissionDenied(
                "DEVICE_NOT_REGISTERED", "this device is not registered to the user"
            )
        self._confirmed[key] = now
        self._confirmed.move_to_end(key)
        while len(self._confirmed) > self._max_entries:
            self._confirmed.popitem(last=False)

    def forget(self, user_id: str, device_id: str) -> None:
        self._confirmed.pop((user_id, device_id), None)

    def forget_all(self) -> None:
        self._confirmed.clear()
