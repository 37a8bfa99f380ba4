"""Deleting what no message will ever carry: uploads never completed (once
their URL has expired, and a grace after) and completed uploads no message
has referenced for long.

Every msgsvc instance sweeps. An upload never completed can no longer
change once its URL has expired, so its object goes first and its record
after. A completed one could be sent at any moment: its record goes first
(taken with SKIP LOCKED, re-checked under the lock) and its object after, so
a crash between leaves an orphan object (storage, not correctness), never a
message whose media has gone.
"""

from __future__ import annotations

import logging

from chatmesh.clock import Clock
from chatmesh.errors import Unavailable
from msgsvc.media.objects import ObjectStore
from msgsvc.media.settings import MediaSettings
from msgsvc.media.store import MediaStore

log = logging.getLogger(__name__)

BATCH = 500


class MediaSweeper:
    def __init__(
        self, store: MediaStore, objects: ObjectStore, settings: MediaSettings, clock: Clock
    ) -> None:
        self._store = store
        self._objects = objects
        self._settings = settings
        self._clock = clock

    async def sweep_once(self) -> int:
        """Deletes what is due, in batches, until nothing is; returns how many."""
        swept = 0
        # Pending uploads: objects first, then records; a store that is down
        # leaves both for the next sweep.
        while True:
            now_ms = self._clock.now_ms()
            pending = await self._store.expired_pending(
                now_ms - self._settings.sweep_grace_s * 1000, BATCH
            )
            if not pending:
                break
            try:
                await self._objects.delete([e.object_key for e in pending])
            except Unavailable as exc:
                log.warning(
                    "media sweep waits for the object store",
                    extra={"fields": {"error": exc.message}},
                )
                return swept
            await self._store.forget_pending([e.media_id for e in pending])
            swept += len(pending)
            if len(pending) < BATCH:
                break
        # Unreferenced uploads: records first (so no message can take one
        # while its object goes), then objects.
        while True:
            now_ms = self._clock.now_ms()
            unreferenced = await self._store.take_unreferenced(
                now_ms - self._settings.unreferenced_ttl_s * 1000, BATCH
            )
            if not unreferenced:
                break
            try:
                await self._objects.delete([e.object_key for e in unreferenced])
            except Unavailable as exc:
                log.warning(
                    "media objects left orphaned",
                    extra={"fields": {"objects": len(unreferenced), "error": exc.message}},
                )
                return swept
            swept += len(unreferenced)
            if len(unreferenced) < BATCH:
                break
        if swept:
            log.info("media swept", extra={"fields": {"uploads": swept}})
        return swept
