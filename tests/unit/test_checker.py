"""The chaos test's checker, on hand-built device views: no network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from tests.e2e.checker import DeviceSnapshot, StoredRow, ViewEntry, check

CONV = "d-alice-bob"
MEMBERS = {CONV: frozenset({"alice", "bob"})}
# Two sends: alice's a1 from her phone, bob's b1 from his laptop.
A1 = ViewEntry(101, "alice", "phone", "a1")
B1 = ViewEntry(102, "bob", "laptop", "b1")
ROWS = [
    StoredRow(CONV, e.message_id, e.sender_user_id, e.sender_device_id, e.client_msg_id)
    for e in (A1, B1)
]


def _device(
    user: str,
    device: str,
    shown: Sequence[ViewEntry],
    *,
    acked: Mapping[str, tuple[str, int]] | None = None,
) -> DeviceSnapshot:
    return DeviceSnapshot(
        user_id=user, device_id=device, views={CONV: tuple(shown)}, acked=acked or {}
    )


def _fleet(
    *,
    alice_tablet: Sequence[ViewEntry] = (A1, B1),
    bob_laptop: Sequence[ViewEntry] = (A1, B1),
) -> list[DeviceSnapshot]:
    """Alice has a phone and a tablet, Bob a laptop; each user sent once."""
    return [
        _device("alice", "phone", (A1, B1), acked={"a1": (CONV, 101)}),
        _device("alice", "tablet", alice_tablet),
        _device("bob", "laptop", bob_laptop, acked={"b1": (CONV, 102)}),
    ]


def test_a_clean_run_has_no_violations_and_counts_every_copy() -> None:
    report = check(_fleet(), MEMBERS, ROWS)
    assert report.violations == []
    assert report.acked == 2
    # a1 reaches alice/tablet and bob/laptop; b1 alice/phone and alice/tablet.
    assert (report.expected_copies, report.delivered_copies) == (4, 4)
    assert (report.lost, report.shown_twice, report.stored_twice) == (0, 0, 0)
    assert report.order_mismatches == 0


def test_a_message_missing_on_the_senders_other_device_is_lost() -> None:
    report = check(_fleet(alice_tablet=(B1,)), MEMBERS, ROWS)
    assert report.lost == 1
    assert report.delivered_copies == 3
    assert report.violations == [f"alice/tablet: lost 101 (alice/phone a1) in {CONV}"]


def test_a_message_shown_twice_is_a_duplicate() -> None:
    again = ViewEntry(103, "alice", "phone", "a1")  # the same send under a second id
    report = check(_fleet(bob_laptop=(A1, B1, again)), MEMBERS, ROWS)
    assert report.shown_twice == 1
    assert "bob/laptop: shows 101 (alice/phone a1) in d-alice-bob 2 times" in report.violations
    assert f"bob/laptop: shows 103 in {CONV}, which is not stored" in report.violations


def test_a_send_stored_twice_in_cassandra_is_reported() -> None:
    rows = [*ROWS, StoredRow(CONV, 103, "alice", "phone", "a1")]
    report = check(_fleet(), MEMBERS, rows)
    assert report.stored_twice == 1
    assert report.violations == ["stored twice: alice/phone a1 as [101, 103]"]


def _two_devices_sending_a1(tablet_ack: int) -> tuple[list[DeviceSnapshot], list[StoredRow]]:
    """Alice's phone and tablet both send a client_msg_id "a1"; the tablet's
    ack names ``tablet_ack``."""
    from_tablet = ViewEntry(103, "alice", "tablet", "a1")
    fleet = [
        _device("alice", "phone", (A1, B1, from_tablet), acked={"a1": (CONV, 101)}),
        _device("alice", "tablet", (A1, B1, from_tablet), acked={"a1": (CONV, tablet_ack)}),
        _device("bob", "laptop", (A1, B1, from_tablet), acked={"b1": (CONV, 102)}),
    ]
    rows = [*ROWS, StoredRow(CONV, 103, "alice", "tablet", "a1")]
    return fleet, rows


def test_two_devices_of_one_user_may_use_the_same_client_msg_id() -> None:
    fleet, rows = _two_devices_sending_a1(tablet_ack=103)
    report = check(fleet, MEMBERS, rows)
    assert report.violations == []
    assert (report.acked, report.stored_twice, report.shown_twice) == (3, 0, 0)


def test_an_ack_naming_another_devices_row_is_reported() -> None:
    fleet, rows = _two_devices_sending_a1(tablet_ack=101)
    report = check(fleet, MEMBERS, rows[:-1])  # the tablet's message was never stored
    assert "alice/tablet: acked a1 as 101, but that row is alice/phone a1" in report.violations
    assert f"bob/laptop: shows 103 in {CONV}, which is not stored" in report.violations


def test_a_view_in_arrival_order_is_an_order_mismatch() -> None:
    report = check(_fleet(bob_laptop=(B1, A1)), MEMBERS, ROWS)
    assert report.order_mismatches == 1
    assert report.violations == [
        f"bob/laptop: {CONV} out of order from position 0: shows [102, 101],"
        " the order is [101, 102]"
    ]


def test_an_acked_message_missing_from_cassandra_broke_the_ack_promise() -> None:
    report = check(_fleet(), MEMBERS, ROWS[1:])
    assert f"alice/phone: acked a1 as 101 in {CONV}, but no such row is stored" in (
        report.violations
    )


def test_a_non_member_showing_a_message_is_a_leak() -> None:
    fleet = [*_fleet(), _device("mallory", "phone", (A1,))]
    report = check(fleet, MEMBERS, ROWS)
    assert "mallory/phone: not a member, yet shows 101 (alice/phone a1) in d-alice-bob" in (
        report.violations
    )


def test_undrained_outboxes_failures_and_device_anomalies_are_violations() -> None:
    fleet = _fleet()
    fleet[2] = replace(
        fleet[2],
        unacked=("b2",),
        failures=("send b3 refused: ERROR_CODE_NOT_FOUND USER_NOT_FOUND",),
        anomalies=("sync from cursor '' reported gap=true",),
    )
    report = check(fleet, MEMBERS, ROWS)
    assert report.violations == [
        "bob/laptop: 1 send(s) never acked: b2",
        "bob/laptop: failure: send b3 refused: ERROR_CODE_NOT_FOUND USER_NOT_FOUND",
        "bob/laptop: anomaly: sync from cursor '' reported gap=true",
    ]


def test_the_summary_names_the_counts_and_the_first_violations() -> None:
    report = check(_fleet(alice_tablet=(), bob_laptop=(B1,)), MEMBERS, ROWS)
    summary = report.summary(limit=1)
    assert summary.splitlines()[0].startswith("acked=2 delivered_copies=1/4")
    assert summary.splitlines()[-1] == f"... and {len(report.violations) - 1} more"
