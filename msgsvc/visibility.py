"""When a message id can still appear, and the catch-up window that follows.

Snowflake ids are generated before the row is written, on several msgsvc
instances at once, so a message can become readable after a message with a
larger id: id A is generated, then id B, B is written and read by a syncing
device, then A is written. A cursor that simply said "everything up to B"
would skip A forever.

The send path bounds that lag instead of hoping it is small:

1. A write with id ``i`` may only *start* while the sender's clock is at
   most ``WRITE_START_DEADLINE_MS`` past ``i``'s timestamp; after that the
   send fails as retryable and never writes ``i`` later.
2. The write itself gives up after ``STORE_WRITE_TIMEOUT_S``; Cassandra drops
   a mutation still queued after its own ``write_request_timeout`` (2 s by
   default), so an abandoned write cannot land afterwards either.
3. A retry that finds the claim of an id older than ``RECLAIM_AFTER_MS`` with
   no stored row may re-claim a fresh id: by then the first attempt has
   either landed (and the retry finds the row) or can no longer land, so the
   message is never stored under two ids.

Hence every message whose id is older than ``COMMIT_BOUND_MS`` is either
readable or never will be. A sync taken at time ``t`` hands out a cursor at
``t - SYNC_WINDOW_MS``: the next sync re-reads that window, which covers the
commit bound plus clock disagreement between instances, and the client drops
what it already has by message id. Nothing committed is ever skipped.
"""

from __future__ import annotations

from chatmesh import snowflake
from chatmesh.errors import Unavailable

WRITE_START_DEADLINE_MS = 5_000
STORE_WRITE_TIMEOUT_S = 5.0
COMMIT_BOUND_MS = WRITE_START_DEADLINE_MS + int(STORE_WRITE_TIMEOUT_S * 1000)
RECLAIM_AFTER_MS = COMMIT_BOUND_MS + 5_000  # margin for a slow event loop between checks
# Instances' clocks are NTP-disciplined to well under a second; 15 s of slack
# beyond the re-claim bound leaves a wide margin for a misbehaving one.
SYNC_WINDOW_MS = RECLAIM_AFTER_MS + 15_000


def age_ms(message_id: int, now_ms: int) -> int:
    return now_ms - snowflake.timestamp_ms(message_id)


def may_start_write(message_id: int, now_ms: int) -> bool:
    return age_ms(message_id, now_ms) <= WRITE_START_DEADLINE_MS


def reclaimable(message_id: int, now_ms: int) -> bool:
    """True once an unwritten id can no longer be written by anyone."""
    return age_ms(message_id, now_ms) > RECLAIM_AFTER_MS


def sync_floor(now_ms: int) -> int:
    """The lowest id the next sync must re-read, for a sync started now."""
    return snowflake.lowest_id_at(max(now_ms - SYNC_WINDOW_MS, snowflake.EPOCH_MS))


def newest_possible_id(now_ms: int) -> int:
    """An upper bound on any id issued so far (ids may lead the clock)."""
    return snowflake.lowest_id_at(now_ms + snowflake.DEFAULT_MAX_LAG_MS + 1)


def send_in_doubt() -> Unavailable:
    """The answer to a send whose id may no longer start its write, or whose
    earlier attempt is unsettled: retryable, and the retry is safe."""
    return Unavailable("SEND_IN_DOUBT", "an earlier attempt of this send is unsettled; resend")
