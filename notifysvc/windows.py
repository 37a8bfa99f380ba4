"""Per-device windows: the messages a device misses within a short time
become one notification, sent when its window closes.

A window opens with a device's first missed message and closes
``window_s`` later, whatever arrives meanwhile, so a busy conversation
still notifies every ``window_s`` rather than never.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_WINDOW_S = 2.0


@dataclass(slots=True)
class _Window(Generic[V]):
    closes_at: float
    items: list[V] = field(default_factory=list)


class DeviceWindows(Generic[K, V]):
    def __init__(self, window_s: float = DEFAULT_WINDOW_S) -> None:
        self._window_s = window_s
        self._open: dict[K, _Window[V]] = {}

    def add(self, device: K, item: V, now: float) -> None:
        window = self._open.get(device)
        if window is None:
            window = self._open[device] = _Window(now + self._window_s)
        window.items.append(item)

    def hold(self, device: K, items: list[V], until: float) -> None:
        """Puts items back (their send is to be tried again) to go out at
        ``until``, or with the device's open window if it closes sooner."""
        window = self._open.get(device)
        if window is None:
            window = self._open[device] = _Window(until)
        window.items.extend(items)

    def due(self, now: float) -> list[tuple[K, list[V]]]:
        """The windows closed at ``now``, removed, in the order they opened."""
        closed = [(k, w.items) for k, w in self._open.items() if w.closes_at <= now]
        for device, _ in closed:
            del self._open[device]
        return closed

    def next_close(self) -> float | None:
        """When the earliest open window closes, if any is open."""
        return min((w.closes_at for w in self._open.values()), default=None)

    def cancel(self, device: K) -> list[V]:
        """Drops a device's open window (it connected: it will sync)."""
        window = self._open.pop(device, None)
        return [] if window is None else window.items

    def __len__(self) -> int:
        return len(self._open)
