"""A client channel that presents a renewed certificate without a restart.

gRPC's channel credentials are fixed when a channel is made, while
cert-manager renews the certificate files in place. ``RenewingChannel``
looks at the files at most every ``check_interval_s``; when they changed,
new calls go to a fresh channel with the new certificate. Calls already
under way (a gateway's long ``Connect`` streams) finish on the old channel,
which is closed after ``retire_after_s``; a stream cut then reconnects, on
the new channel, as after any other break.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 30.0
RETIRE_AFTER_S = 300.0


class RenewingChannel(grpc.aio.Channel):  # type: ignore[misc]  # untyped base
    def __init__(
        self,
        open_channel: Callable[[], grpc.aio.Channel],
        fingerprint: Callable[[], object],
        *,
        check_interval_s: float = CHECK_INTERVAL_S,
        retire_after_s: float = RETIRE_AFTER_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open = open_channel
        self._fingerprint = fingerprint
        self._check_interval_s = check_interval_s
        self._retire_after_s = retire_after_s
        self._monotonic = monotonic
        self._seen = fingerprint()
        self._checked_at = monotonic()
        self._channel = open_channel()
        self._retired: set[grpc.aio.Channel] = set()
        self._closers: set[asyncio.Task[None]] = set()

    def current(self) -> grpc.aio.Channel:
        """The channel for a new call: renewed if the certificate changed."""
        now = self._monotonic()
        if now - self._checked_at >= self._check_interval_s:
            self._checked_at = now
            try:
                seen = self._fingerprint()
            except OSError:
                return self._channel  # mid-rewrite: look again next time
            if seen != self._seen:
                self._seen = seen
                self._retire(self._channel)
                self._channel = self._open()
                log.info("mesh client certificate renewed; new calls use it")
        return self._channel

    def _retire(self, channel: grpc.aio.Channel) -> None:
        self._retired.add(channel)
        loop = asyncio.get_running_loop()

        def close() -> None:
            task = loop.create_task(channel.close())
            self._closers.add(task)
            task.add_done_callback(self._closers.discard)
            self._retired.discard(channel)

        loop.call_later(self._retire_after_s, close)

    # -- grpc.aio.Channel ------------------------------------------------------

    def unary_unary(self, *args: Any, **kwargs: Any) -> Any:
        return _Follows(self, "unary_unary", args, kwargs)

    def unary_stream(self, *args: Any, **kwargs: Any) -> Any:
        return _Follows(self, "unary_stream", args, kwargs)

    def stream_unary(self, *args: Any, **kwargs: Any) -> Any:
        return _Follows(self, "stream_unary", args, kwargs)

    def stream_stream(self, *args: Any, **kwargs: Any) -> Any:
        return _Follows(self, "stream_stream", args, kwargs)

    async def close(self, grace: float | None = None) -> None:
        for channel in [self._channel, *self._retired]:
            await channel.close(grace)
        self._retired.clear()

    async def __aenter__(self) -> RenewingChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self.current().get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.current().wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self.current().channel_ready()


class _Follows:
    """A multi-callable bound to whichever channel is current at each call
    (generated stubs make theirs once, at construction)."""

    def __init__(
        self, owner: RenewingChannel, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self._owner = owner
        self._kind = kind
        self._args = args
        self._kwargs = kwargs
        self._bound: tuple[grpc.aio.Channel, Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        channel = self._owner.current()
        if self._bound is None or self._bound[0] is not channel:
            self._bound = (channel, getattr(channel, self._kind)(*self._args, **self._kwargs))
        return self._bound[1](*args, **kwargs)
