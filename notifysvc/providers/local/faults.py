"""Scripted failures: how a local provider answers one device credential."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Fault:
    """Answer ``status`` (with ``reason`` in the provider's error vocabulary
    and ``Retry-After`` when given; or with ``body`` as it is, which need
    not be what the provider would say), or never answer when ``hang``; for
    the next ``times`` requests only, or for all of them when None."""

    status: int = 0
    reason: str = ""
    retry_after: str | None = None
    hang: bool = False
    times: int | None = None
    body: str | None = None


class Faults:
    def __init__(self) -> None:
        self._by_key: dict[str, Fault] = {}
        self._released = asyncio.Event()

    def set(self, key: str, fault: Fault) -> None:
        self._by_key[key] = fault

    def clear(self, key: str) -> None:
        self._by_key.pop(key, None)

    def get(self, key: str) -> Fault | None:
        """The fault for this request to ``key``, counting it against ``times``."""
        fault = self._by_key.get(key)
        if fault is not None and fault.times is not None:
            if fault.times <= 1:
                del self._by_key[key]
            else:
                self._by_key[key] = dataclasses.replace(fault, times=fault.times - 1)
        return fault

    async def hang(self) -> None:
        """Blocks until the server stops, so a hung request ends with it."""
        await self._released.wait()

    def release(self) -> None:
        self._released.set()
