"""Whether a process can do its work now: its dependencies answer.

A process starts with ``ready`` False and becomes ready once its start-up
steps are done and every check passes; it stays up, unready, while a
dependency is down, and becomes ready again by itself when it returns. The
gRPC health status and the ops endpoint's ``/readyz`` follow ``ready``, so
load balancers and Kubernetes stop sending work to an instance that cannot
do it, and nobody restarts it for waiting.

A ready process turns unready only when a check fails twice in a row, the
second try soon after the first: one slow answer from a busy store is not an
outage, and an instance that flaps its health on it gets traffic pulled from
it for nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[object]]  # raises (or times out) when the dependency is down
Listener = Callable[[bool], Awaitable[None]]

CHECK_INTERVAL_S = 2.0
CHECK_TIMEOUT_S = 2.0
RECHECK_INTERVAL_S = 0.5
FAILURES_TO_UNREADY = 2


class Readiness:
    def __init__(
        self,
        *,
        interval_s: float = CHECK_INTERVAL_S,
        recheck_interval_s: float = RECHECK_INTERVAL_S,
    ) -> None:
        self._checks: dict[str, Check] = {}
        self._consecutive_failures: dict[str, int] = {}
        self._gates: dict[str, Check] = {}
        self._listeners: list[Listener] = []
        self._interval_s = interval_s
        self._recheck_interval_s = recheck_interval_s
        self._started = False
        self.ready = False
        self.failing: list[str] = ["starting"]

    def add_check(self, name: str, check: Check) -> None:
        """Checked for as long as the process runs."""
        self._checks[name] = check

    def add_gate(self, name: str, check: Check) -> None:
        """Checked until it first passes, then no more: for a dependency
        whose later outages the process rides out by itself."""
        self._gates[name] = check

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def started(self) -> None:
        """Start-up steps are done; readiness now follows the checks alone."""
        self._started = True
        await self.check_now()

    async def check_now(self) -> bool:
        failing = [] if self._started else ["starting"]
        checks = {**self._checks, **self._gates}
        names = list(checks)
        results = await asyncio.gather(
            *(asyncio.wait_for(checks[n](), CHECK_TIMEOUT_S) for n in names),
            return_exceptions=True,
        )
        failed = [n for n, r in zip(names, results, strict=True) if isinstance(r, BaseException)]
        for name in names:
            self._consecutive_failures[name] = (
                self._consecutive_failures.get(name, 0) + 1 if name in failed else 0
            )
        for name in [n for n in self._gates if n not in failed]:
            del self._gates[name]
        if self.ready:
            failed = [n for n in failed if self._consecutive_failures[n] >= FAILURES_TO_UNREADY]
        failing += failed
        self.failing = failing
        ready = not failing
        if ready != self.ready:
            self.ready = ready
            log.log(
                logging.INFO if ready else logging.WARNING,
                "ready" if ready else "not ready",
                extra={"fields": {"failing": failing}},
            )
            for listener in self._listeners:
                await listener(ready)
        return ready

    @property
    def suspect(self) -> bool:
        """A check has just failed without making the process unready yet."""
        return self.ready and any(self._consecutive_failures.values())

    async def run(self) -> None:
        while True:
            await self.check_now()
            await asyncio.sleep(self._recheck_interval_s if self.suspect else self._interval_s)
