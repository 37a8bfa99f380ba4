"""Retrying a step until it succeeds: exponential backoff with full jitter.

Used where a process cannot go on without something (its worker-id lease,
a first Cassandra session): it waits, unready, instead of exiting into a
crash loop, and many restarted replicas do not retry in lockstep.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

INITIAL_BACKOFF_S = 0.2
MAX_BACKOFF_S = 10.0


async def until_done(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    initial_s: float = INITIAL_BACKOFF_S,
    max_s: float = MAX_BACKOFF_S,
    rng: random.Random | None = None,
) -> T:
    """``attempt()``'s result once it returns; every exception is logged and
    retried after a random delay in [0, min(max_s, initial_s * 2**n)]."""
    rng = rng or random.Random()
    failures = 0
    while True:
        try:
            result = await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            ceiling = min(max_s, initial_s * 2 ** min(failures, 30))
            # Every failure while few, then one in ten: a store down for
            # an hour must not flood the log.
            if failures <= 3 or failures % 10 == 0:
                log.warning(
                    "waiting for a dependency",
                    extra={"fields": {"step": what, "failures": failures, "error": repr(exc)}},
                )
            await asyncio.sleep(rng.uniform(0, ceiling))
            continue
        if failures:
            log.info("dependency ready", extra={"fields": {"step": what, "failures": failures}})
        return result
