"""Which offsets of the job topic may be committed: those below the oldest
job still in flight, per partition.

Jobs finish out of order (a device's window closes when it closes, a retry
waits for its provider), so a partition's commit point is the lowest offset
not yet finished. A crash re-reads from there: finished jobs after it are
sent again (at least once; the collapse key makes a repeat replace its first
copy on the device), unfinished ones are not lost.
"""

from __future__ import annotations

from collections import deque


class _Partition:
    __slots__ = ("finished", "offsets")

    def __init__(self) -> None:
        self.offsets: deque[int] = deque()  # read, in order
        self.finished: set[int] = set()


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}
        self._committed: dict[int, int] = {}

    def read(self, partition: int, offset: int) -> None:
        state = self._partitions.setdefault(partition, _Partition())
        if state.offsets and offset <= state.offsets[-1]:
            # Read again from an earlier point: the partition was revoked and
            # assigned back. What was in flight is in flight again.
            state = self._partitions[partition] = _Partition()
        state.offsets.append(offset)

    def finish(self, partition: int, offset: int) -> None:
        state = self._partitions.get(partition)
        if state is not None and state.offsets and offset >= state.offsets[0]:
            state.finished.add(offset)

    def in_flight(self) -> int:
        return sum(len(p.offsets) - len(p.finished) for p in self._partitions.values())

    def committable(self) -> dict[int, int]:
        """Per partition whose commit point moved since last asked, the offset
        to commit (the next one to read after a restart)."""
        moved: dict[int, int] = {}
        for partition, state in self._partitions.items():
            last = None
            while state.offsets and state.offsets[0] in state.finished:
                last = state.offsets.popleft()
                state.finished.discard(last)
            if last is not None:
                moved[partition] = last + 1
        return moved
