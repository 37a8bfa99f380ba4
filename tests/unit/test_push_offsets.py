"""Commit points of the push job topic: below the oldest unfinished job."""

from __future__ import annotations

from notifysvc.offsets import OffsetTracker


def test_the_commit_point_waits_for_the_oldest_unfinished_job() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.read(0, offset)
    tracker.finish(0, 11)
    tracker.finish(0, 12)
    assert tracker.committable() == {}  # 10 is still being sent
    assert tracker.in_flight() == 1
    tracker.finish(0, 10)
    assert tracker.committable() == {0: 13}
    assert tracker.committable() == {}  # only moves are reported
    assert tracker.in_flight() == 0


def test_partitions_move_apart() -> None:
    tracker = OffsetTracker()
    tracker.read(0, 5)
    tracker.read(1, 7)
    tracker.read(1, 8)
    tracker.finish(1, 7)
    assert tracker.committable() == {1: 8}
    tracker.finish(0, 5)
    tracker.finish(1, 8)
    assert tracker.committable() == {0: 6, 1: 9}


def test_reading_a_partition_again_from_earlier_starts_its_tracking_over() -> None:
    tracker = OffsetTracker()
    tracker.read(3, 40)
    tracker.read(3, 41)
    # Revoked and assigned back: the group reads from its last commit again.
    tracker.read(3, 40)
    tracker.finish(3, 40)
    assert tracker.committable() == {3: 41}
    assert tracker.in_flight() == 0


def test_a_finish_for_an_offset_no_longer_tracked_is_ignored() -> None:
    tracker = OffsetTracker()
    tracker.read(0, 100)
    tracker.finish(0, 99)
    tracker.finish(2, 1)
    assert tracker.committable() == {}
    assert tracker.in_flight() == 1
