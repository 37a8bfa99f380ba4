"""The durable push job queue: a Redis stream consumed by notifysvc's senders.

One entry per (user, message). A stream rather than pub/sub because a job
must survive a notifysvc restart; a consumer group lets several instances
share the work with acknowledgement and redelivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as redis

# Bounded so a provider outage cannot grow Redis without limit; ~100k pending
# notifications is hours of backlog for a node.
MAX_QUEUED_JOBS = 100_000


@dataclass(frozen=True, slots=True)
class PushJob:
    user_id: str
    conversation_id: str
    message_id: int
    sender_user_id: str


class RedisPushQueue:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self._redis = client
        self.stream = f"{key_prefix}push-jobs"

    async def enqueue(self, jobs: Sequence[PushJob]) -> int:
        async with self._redis.pipeline(transaction=False) as pipe:
            for job in jobs:
                pipe.xadd(
                    self.stream,
                    {
                        "user_id": job.user_id,
                        "conversation_id": job.conversation_id,
                        "message_id": str(job.message_id),
                        "sender_user_id": job.sender_user_id,
                    },
                    maxlen=MAX_QUEUED_JOBS,
                    approximate=True,
                )
            await pipe.execute()
        return len(jobs)
