"""What a user chooses about pushes: a device's credential and previews, and
which conversations are muted."""

from __future__ import annotations

from dataclasses import dataclass

from chatmesh.clock import Clock
from chatmesh.errors import InvalidArgument
from msgsvc.access import Access
from msgsvc.accounts import Accounts
from msgsvc.push_credentials import PushCredential
from msgsvc.storage.accounts import DeviceRecord
from msgsvc.storage.mutes import PostgresMutes


@dataclass(frozen=True, slots=True)
class Mute:
    muted: bool
    until_ms: int  # 0: until unmuted (or not muted)


class PushSettings:
    def __init__(
        self, accounts: Accounts, access: Access, mutes: PostgresMutes, clock: Clock
    ) -> None:
        self._accounts = accounts
        self._access = access
        self._mutes = mutes
        self._clock = clock

    async def register(
        self,
        user_id: str,
        device_id: str,
        credential: PushCredential | None,
        show_previews: bool | None,
    ) -> DeviceRecord:
        """The device's own registration; no credential: no pushes any more."""
        if credential is None:
            return await self._accounts.register_device(
                user_id, device_id, show_previews=show_previews
            )
        return await self._accounts.register_device(
            user_id, device_id, credential=credential, show_previews=show_previews
        )

    async def mute(self, user_id: str, conversation_id: str, muted: bool, until_ms: int) -> Mute:
        """Mutes (until ``until_ms``, or for good with 0) or unmutes; only a
        member may, and a time in the past is refused rather than stored."""
        await self._access.member_conversation(user_id, conversation_id)
        if not muted:
            await self._mutes.unmute(user_id, conversation_id)
            return Mute(False, 0)
        if until_ms < 0 or (until_ms and until_ms <= self._clock.now_ms()):
            raise InvalidArgument("INVALID_MUTE_UNTIL", "until_ms is 0 or a time to come")
        await self._mutes.mute(user_id, conversation_id, until_ms or None)
        return Mute(True, until_ms)
