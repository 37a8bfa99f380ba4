"""Users and devices: validation and the error vocabulary over ``AccountStore``.

Every method raises ``InvalidArgument`` before touching the store when its
input is malformed, and ``NotFound("USER_NOT_FOUND")`` for a device operation
on a user that does not exist. Store failures propagate unchanged; the edges
classify them (``msgsvc.failures``). Every write is idempotent, so retrying a
call whose outcome was lost is always safe.
"""

from __future__ import annotations

from typing import Protocol

from chatmesh.clock import Clock
from chatmesh.conversation import is_valid_user_id
from chatmesh.errors import InvalidArgument, NotFound
from msgsvc.push_credentials import PushCredential
from msgsvc.storage.accounts import AccountStore, DeviceRecord, UnknownUser, UserRecord

# Push platforms as stored in devices.push_platform.
PUSH_PLATFORMS = frozenset({"fcm", "apns", "webpush"})
# Room for a UI label in any script; longer names are a client bug or abuse.
MAX_DISPLAY_NAME_CHARS = 128
# FCM registration tokens are ~160 characters and APNs tokens 64; a Web Push
# subscription (endpoint URL plus keys, serialised) stays well under 1 KB.
# 4096 leaves room for provider changes without letting a row grow unbounded.
MAX_PUSH_TOKEN_CHARS = 4096


class Revoker(Protocol):
    async def revoke(self, user_id: str, device_id: str, at_ms: int) -> None: ...


class Accounts:
    def __init__(self, store: AccountStore, revoker: Revoker, clock: Clock) -> None:
        self._store = store
        self._revoker = revoker
        self._clock = clock

    async def create_user(self, user_id: str, display_name: str) -> tuple[UserRecord, bool]:
        """The stored user and whether this call created it. An existing user
        is returned unchanged, even if ``display_name`` differs."""
        _check_user_id(user_id)
        if len(display_name) > MAX_DISPLAY_NAME_CHARS:
            raise InvalidArgument(
                "DISPLAY_NAME_TOO_LONG",
                f"display_name exceeds {MAX_DISPLAY_NAME_CHARS} characters",
            )
        _check_storable("display_name", display_name)
        return await self._store.create_user(user_id, display_name)

    async def get_user(self, user_id: str) -> UserRecord:
        _check_user_id(user_id)
        user = await self._store.get_user(user_id)
        if user is None:
            raise NotFound("USER_NOT_FOUND", f"no user {user_id!r}")
        return user

    async def register_device(
        self,
        user_id: str,
        device_id: str,
        push_platform: str | None = None,
        push_token: str | None = None,
        *,
        credential: PushCredential | None = None,
        show_previews: bool | None = None,
    ) -> DeviceRecord:
        """Registers the device, or replaces its push fields, and sets
        whether pushes show previews unless ``show_previews`` is None. The
        push fields are a checked ``credential`` (``msgsvc.push_credentials``)
        or a bare platform and token; no platform means no push: an existing
        one is cleared. A platform needs a token, and a token needs a platform."""
        _check_user_id(user_id)
        _check_device_id(device_id)
        push_token = push_token or None  # proto3 cannot tell "" from unset
        if credential is not None:
            if push_platform is not None or push_token is not None:
                raise InvalidArgument(
                    "PUSH_CREDENTIAL_TWICE", "give push, or push_platform and push_token, not both"
                )
            return await self._register(
                user_id,
                device_id,
                credential.platform,
                credential.token,
                dict(credential.params) or None,
                show_previews,
            )
        if push_platform is None:
            if push_token is not None:
                raise InvalidArgument(
                    "PUSH_TOKEN_WITHOUT_PLATFORM", "push_token needs a push_platform"
                )
        else:
            if push_platform not in PUSH_PLATFORMS:
                raise InvalidArgument(
                    "UNKNOWN_PUSH_PLATFORM", f"push_platform {push_platform!r} is not known"
                )
            if push_token is None:
                raise InvalidArgument("MISSING_PUSH_TOKEN", "push_platform needs a push_token")
            if len(push_token) > MAX_PUSH_TOKEN_CHARS:
                raise InvalidArgument(
                    "PUSH_TOKEN_TOO_LONG", f"push_token exceeds {MAX_PUSH_TOKEN_CHARS} characters"
                )
            _check_storable("push_token", push_token)
        return await self._register(
            user_id, device_id, push_platform, push_token, None, show_previews
        )

    async def _register(
        self,
        user_id: str,
        device_id: str,
        push_platform: str | None,
        push_token: str | None,
        push_params: dict[str, str] | None,
        show_previews: bool | None,
    ) -> DeviceRecord:
        try:
            return await self._store.register_device(
                user_id, device_id, push_platform, push_token, push_params, show_previews
            )
        except UnknownUser as exc:
            raise NotFound("USER_NOT_FOUND", str(exc)) from exc

    async def ensure_device(self, user_id: str, device_id: str) -> DeviceRecord:
        """Registers the device without push unless it exists; an existing
        device, its push token included, is left unchanged."""
        _check_user_id(user_id)
        _check_device_id(device_id)
        try:
            return await self._store.ensure_device(user_id, device_id)
        except UnknownUser as exc:
            raise NotFound("USER_NOT_FOUND", str(exc)) from exc

    async def list_devices(self, user_id: str) -> list[DeviceRecord]:
        """The user's devices ordered by device_id."""
        _check_user_id(user_id)
        devices = await self._store.list_devices(user_id)
        # Only an empty list can mean an unknown user: the common case costs
        # one query.
        if not devices:
            await self.get_user(user_id)
        return devices

    async def remove_device(self, user_id: str, device_id: str) -> bool:
        """Whether the device existed. Removing it again returns False.

        The removal is announced to every gateway and msgsvc instance (its
        connections close within seconds, its tokens are refused) before
        this returns; if that fails, so does the call, and a retry announces
        it again."""
        _check_user_id(user_id)
        _check_device_id(device_id)
        removed = await self._store.remove_device(user_id, device_id)
        if not removed:
            await self.get_user(user_id)
        await self._revoker.revoke(user_id, device_id, self._clock.now_ms())
        return removed


def _check_user_id(user_id: str) -> None:
    if not is_valid_user_id(user_id):
        raise InvalidArgument("INVALID_USER_ID", f"{user_id!r} is not a valid user id")


def _check_device_id(device_id: str) -> None:
    # Device ids follow the user id rules: they appear in tokens, Redis keys
    # and logs, where the same character set is known to be safe.
    if not is_valid_user_id(device_id):
        raise InvalidArgument("INVALID_DEVICE_ID", f"{device_id!r} is not a valid device id")


def _check_storable(field: str, value: str) -> None:
    # PostgreSQL text cannot hold NUL; refusing it here keeps it from
    # surfacing as an INTERNAL error from the driver.
    if "\x00" in value:
        raise InvalidArgument(f"INVALID_{field.upper()}", f"{field} must not contain NUL")
