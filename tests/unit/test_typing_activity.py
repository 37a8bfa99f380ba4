"""Typing indicators' bookkeeping: the per-device throttle and allowance, and
the per-conversation coalescer, on a hand-moved clock."""

from __future__ import annotations

from msgsvc.typing_activity import (
    DeviceAllowance,
    TypingChanges,
    TypingCoalescer,
    TypingThrottle,
)


class HandClock:
    """Monotonic milliseconds that move only when the test moves them."""

    def __init__(self) -> None:
        self.now_ms = 1_000_000

    def __call__(self) -> float:
        return self.now_ms

    def advance_ms(self, ms: int) -> None:
        self.now_ms += ms


# -- throttle ------------------------------------------------------------------


def test_one_start_per_device_and_conversation_every_interval() -> None:
    clock = HandClock()
    throttle = TypingThrottle(interval_ms=2000, ttl_ms=6000, now=clock)
    assert throttle.admit("ann", "phone", "c1", True)
    clock.advance_ms(100)
    assert not throttle.admit("ann", "phone", "c1", True)
    clock.advance_ms(1899)
    assert not throttle.admit("ann", "phone", "c1", True)
    clock.advance_ms(1)
    assert throttle.admit("ann", "phone", "c1", True)
    # Each device and each conversation has its own interval.
    assert throttle.admit("ann", "laptop", "c1", True)
    assert throttle.admit("ann", "phone", "c2", True)
    assert throttle.admit("ben", "phone", "c1", True)


def test_a_burst_of_starts_lets_one_through() -> None:
    clock = HandClock()
    throttle = TypingThrottle(interval_ms=2000, ttl_ms=6000, now=clock)
    passed = 0
    for _ in range(20):
        passed += throttle.admit("ann", "phone", "c1", True)
        clock.advance_ms(50)
    assert passed == 1


def test_a_stop_passes_once_after_a_start() -> None:
    clock = HandClock()
    throttle = TypingThrottle(interval_ms=2000, ttl_ms=6000, now=clock)
    assert throttle.admit("ann", "phone", "c1", True)
    clock.advance_ms(500)
    assert throttle.admit("ann", "phone", "c1", False)
    assert not throttle.admit("ann", "phone", "c1", False)  # told already
    # Typing again right after the stop (a message sent, the next one begun)
    # is a change: told at once, and its repeats are thinned out again.
    assert throttle.admit("ann", "phone", "c1", True)
    assert not throttle.admit("ann", "phone", "c1", True)
    assert throttle.admit("ann", "phone", "c1", False)
    clock.advance_ms(1500)
    assert throttle.admit("ann", "phone", "c1", True)
    assert throttle.admit("ann", "phone", "c1", False)


def test_a_stop_of_an_unknown_device_passes_once() -> None:
    clock = HandClock()
    throttle = TypingThrottle(interval_ms=2000, ttl_ms=6000, now=clock)
    # Its start may have gone to another instance: the stop is told.
    assert throttle.admit("ann", "phone", "c1", False)
    assert not throttle.admit("ann", "phone", "c1", False)
    clock.advance_ms(6000)
    # Forgotten as idle: known to nobody again.
    assert throttle.admit("ann", "phone", "c1", False)


def test_renewals_every_three_seconds_all_pass() -> None:
    clock = HandClock()
    throttle = TypingThrottle(interval_ms=2000, ttl_ms=6000, now=clock)
    for _ in range(5):
        assert throttle.admit("ann", "phone", "c1", True)
        clock.advance_ms(3000)
    assert throttle.admit("ann", "phone", "c1", False)


def test_the_throttle_holds_a_bounded_number_of_entries_and_forgets_idle_ones() -> None:
    clock = HandClock()
    throttle = TypingThrottle(interval_ms=2000, ttl_ms=6000, max_entries=100, now=clock)
    # A flood over many conversations from one device.
    for i in range(10_000):
        throttle.admit("ann", "phone", f"c{i}", True)
    assert len(throttle) == 100
    clock.advance_ms(5999)
    throttle.admit("ben", "phone", "c1", True)
    assert len(throttle) == 101 - 1  # the oldest made room
    clock.advance_ms(1)
    throttle.admit("ben", "phone", "c2", True)
    assert len(throttle) == 2  # the flood's entries were idle for the ttl


# -- allowance -----------------------------------------------------------------


def test_a_device_gets_its_burst_then_its_rate() -> None:
    clock = HandClock()
    allowance = DeviceAllowance(rate_per_s=5, burst=10, now=clock)
    assert sum(allowance.take("ann", "phone") for _ in range(50)) == 10
    assert allowance.take("ann", "laptop")  # another device's own budget
    clock.advance_ms(199)
    assert not allowance.take("ann", "phone")
    clock.advance_ms(1)
    assert allowance.take("ann", "phone")
    assert not allowance.take("ann", "phone")
    clock.advance_ms(1000)
    assert sum(allowance.take("ann", "phone") for _ in range(50)) == 5


def test_the_allowance_forgets_devices_once_their_budget_is_whole_again() -> None:
    clock = HandClock()
    allowance = DeviceAllowance(rate_per_s=5, burst=10, max_devices=50, now=clock)
    for i in range(1000):
        allowance.take("ann", f"dev{i}")
    assert len(allowance) == 50
    clock.advance_ms(2000)  # 10 tokens at 5 per second
    allowance.take("ann", "phone")
    assert len(allowance) == 1


# -- coalescer -----------------------------------------------------------------


MEMBERS = tuple(f"m{i:02}" for i in range(30))


def test_a_windows_changes_leave_together_when_it_closes() -> None:
    clock = HandClock()
    coalescer = TypingCoalescer(window_ms=1000, now=clock)
    assert coalescer.next_due_ms() is None
    assert coalescer.add("g", "m03", True, MEMBERS)
    opened_ms = clock()
    clock.advance_ms(300)
    coalescer.add("g", "m01", True, MEMBERS)
    coalescer.add("g", "m02", True, MEMBERS)
    clock.advance_ms(300)
    coalescer.add("g", "m02", False, MEMBERS)  # the latest change of a user wins
    coalescer.add("g", "m04", False, MEMBERS)
    assert coalescer.next_due_ms() == opened_ms + 1000
    clock.advance_ms(399)
    assert coalescer.take_due() == []
    clock.advance_ms(1)
    assert coalescer.take_due() == [
        TypingChanges("g", ("m01", "m03"), ("m02", "m04"), MEMBERS),
    ]
    assert coalescer.take_due() == []
    assert coalescer.next_due_ms() is None


def test_each_conversation_has_its_own_window() -> None:
    clock = HandClock()
    coalescer = TypingCoalescer(window_ms=1000, now=clock)
    coalescer.add("g1", "m01", True, MEMBERS)
    clock.advance_ms(600)
    coalescer.add("g2", "m02", True, MEMBERS)
    coalescer.add("g1", "m03", True, MEMBERS)
    clock.advance_ms(400)
    assert coalescer.take_due() == [TypingChanges("g1", ("m01", "m03"), (), MEMBERS)]
    # A change after g1's window closed opens its next one.
    coalescer.add("g1", "m01", False, MEMBERS)
    clock.advance_ms(600)
    assert coalescer.take_due() == [TypingChanges("g2", ("m02",), (), MEMBERS)]
    clock.advance_ms(400)
    assert coalescer.take_due() == [TypingChanges("g1", (), ("m01",), MEMBERS)]


def test_the_audience_is_the_latest_one_seen() -> None:
    clock = HandClock()
    coalescer = TypingCoalescer(window_ms=1000, now=clock)
    coalescer.add("g", "m01", True, MEMBERS)
    coalescer.add("g", "m02", True, MEMBERS[:-1])
    clock.advance_ms(1000)
    (changes,) = coalescer.take_due()
    assert changes.member_ids == MEMBERS[:-1]


def test_ten_typists_in_a_large_group_cost_one_frame_a_window() -> None:
    clock = HandClock()
    coalescer = TypingCoalescer(window_ms=1000, now=clock)
    throttle = TypingThrottle(interval_ms=2000, ttl_ms=6000, now=clock)
    members = tuple(f"u{i:03}" for i in range(500))
    typists = members[:10]
    told = 0
    frames: list[TypingChanges] = []
    # For ten seconds each typist's device sends a start every 500 ms, the
    # typists 100 ms apart; every change let through is gathered.
    for elapsed_ms in range(0, 10_000, 100):
        for i, typist in enumerate(typists):
            if (elapsed_ms - 100 * i) % 500 == 0 and throttle.admit(typist, "phone", "g", True):
                coalescer.add("g", typist, True, members)
                told += 1
        frames.extend(coalescer.take_due())
        clock.advance_ms(100)
    clock.advance_ms(1000)
    frames.extend(coalescer.take_due())
    assert told == 50  # one start per typist every 2 s
    assert len(frames) <= 10  # one a window, not one a change
    assert sum(len(f.typing_user_ids) for f in frames) == len(set(typists)) * 5


def test_open_windows_are_bounded() -> None:
    clock = HandClock()
    coalescer = TypingCoalescer(window_ms=1000, max_conversations=3, now=clock)
    assert all(coalescer.add(f"g{i}", "m01", True, MEMBERS) for i in range(3))
    assert not coalescer.add("g3", "m01", True, MEMBERS)
    assert coalescer.add("g0", "m02", True, MEMBERS)  # an open window still gathers
    assert len(coalescer) == 3
    clock.advance_ms(1000)
    assert [c.conversation_id for c in coalescer.take_due()] == ["g0", "g1", "g2"]
    assert coalescer.add("g3", "m01", True, MEMBERS)
