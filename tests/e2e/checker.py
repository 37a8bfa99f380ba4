"""Did every device end up with the same, complete, duplicate-free history?

Pure functions over what the devices show (``DeviceSnapshot``), who belongs
to which conversation, and the rows read back from Cassandra. No network: the
chaos test gathers those three and asserts ``check(...).violations == []``;
the unit tests hand-build them.

What a correct system guarantees, and what is checked here:

(a) Every acked message is shown, exactly once, on every device of every
    member of its conversation: the recipients' devices and the sender's
    other devices by delivery or sync, the sending device by its ack.
(b) Every device shows a conversation in the same order. Message ids define
    that order (``common.proto``), so each view must be in ascending
    message_id order; comparing every view with that one order also catches
    a device that displays in arrival order.
(c) A send is stored once: no (sender, device, client_msg_id) has two rows
    in Cassandra, no device saw two message ids for one send, and every
    acked message is in Cassandra as that very send (an ack promises
    durability). A client_msg_id is scoped to its device: two devices of one
    user may both use ``m1``, and those are two messages.
(d) Every outbox drained and no send failed for good.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

# Violations beyond this many are counted but not spelled out in a summary.
SUMMARY_VIOLATIONS = 25


class ViewEntry(NamedTuple):
    """One message as a device shows it."""

    message_id: int
    sender_user_id: str
    sender_device_id: str
    client_msg_id: str


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One message row as read back from Cassandra."""

    conversation_id: str
    message_id: int
    sender_user_id: str
    sender_device_id: str
    client_msg_id: str


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    """What one device holds at the end of a run."""

    user_id: str
    device_id: str
    # conversation_id -> messages in display order
    views: Mapping[str, Sequence[ViewEntry]]
    # the device's own sends: client_msg_id -> (conversation_id, message_id)
    acked: Mapping[str, tuple[str, int]]
    unacked: Sequence[str] = ()  # client_msg_ids still in the outbox
    failures: Sequence[str] = ()  # sends (or syncs) the server refused for good
    anomalies: Sequence[str] = ()  # contradictions the device noticed itself
    received: int = 0  # raw copies ingested: acks, deliveries, sync pages
    duplicates_filtered: int = 0  # of those, copies it already had

    @property
    def name(self) -> str:
        return f"{self.user_id}/{self.device_id}"


@dataclass(frozen=True, slots=True)
class Report:
    acked: int  # sends acknowledged, over all devices
    expected_copies: int  # (device, message) pairs that must exist besides the senders'
    delivered_copies: int  # of those, present
    received: int  # raw copies ingested by all devices
    duplicates_filtered: int  # raw copies the devices dropped as already known
    lost: int  # expected copies missing
    shown_twice: int  # copies shown more than once on one device
    stored_twice: int  # extra Cassandra rows for one send (user, device, client_msg_id)
    order_mismatches: int  # conversation views not in the one order
    violations: list[str] = field(default_factory=list)

    def counts(self) -> str:
        return (
            f"acked={self.acked} delivered_copies={self.delivered_copies}"
            f"/{self.expected_copies} received={self.received}"
            f" duplicates_filtered={self.duplicates_filtered} lost={self.lost}"
            f" shown_twice={self.shown_twice} stored_twice={self.stored_twice}"
            f" order_mismatches={self.order_mismatches} violations={len(self.violations)}"
        )

    def summary(self, limit: int = SUMMARY_VIOLATIONS) -> str:
        lines = [self.counts(), *self.violations[:limit]]
        if len(self.violations) > limit:
            lines.append(f"... and {len(self.violations) - limit} more")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _CopyCounts:
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    shown_twice: int = 0


def check(
    devices: Sequence[DeviceSnapshot],
    members: Mapping[str, Collection[str]],
    rows: Iterable[StoredRow],
) -> Report:
    """Checks (a)-(d) above. ``members``: conversation_id -> member user ids;
    ``rows``: every stored row of those conversations."""
    stored = list(rows)
    violations: list[str] = []
    copies = check_copies(devices, members, violations)
    order_mismatches = check_order(devices, violations)
    stored_twice = check_storage(devices, stored, violations)
    check_devices(devices, violations)
    return Report(
        acked=sum(len(d.acked) for d in devices),
        expected_copies=copies.expected,
        delivered_copies=copies.delivered,
        received=sum(d.received for d in devices),
        duplicates_filtered=sum(d.duplicates_filtered for d in devices),
        lost=copies.lost,
        shown_twice=copies.shown_twice,
        stored_twice=stored_twice,
        order_mismatches=order_mismatches,
        violations=violations,
    )


def check_copies(
    devices: Sequence[DeviceSnapshot],
    members: Mapping[str, Collection[str]],
    violations: list[str],
) -> _CopyCounts:
    """(a): every acked message exactly once on every member device, nowhere else."""
    expected = delivered = lost = shown_twice = 0
    for sender in devices:
        for client_msg_id, (conversation_id, message_id) in sorted(sender.acked.items()):
            if sender.user_id not in members.get(conversation_id, ()):
                violations.append(
                    f"{sender.name}: {client_msg_id} acked into {conversation_id},"
                    " of which it is not a known member"
                )
                continue
            send = (sender.user_id, sender.device_id, client_msg_id)
            for device in devices:
                view = device.views.get(conversation_id, ())
                copies = [
                    e
                    for e in view
                    if e.message_id == message_id
                    or (e.sender_user_id, e.sender_device_id, e.client_msg_id) == send
                ]
                what = f"{message_id} ({sender.name} {client_msg_id}) in {conversation_id}"
                if device.user_id not in members[conversation_id]:
                    if copies:
                        violations.append(f"{device.name}: not a member, yet shows {what}")
                    continue
                if device is not sender:
                    expected += 1
                if not copies:
                    lost += 1
                    violations.append(f"{device.name}: lost {what}")
                    continue
                if len(copies) > 1:
                    shown_twice += 1
                    violations.append(f"{device.name}: shows {what} {len(copies)} times")
                if device is not sender:
                    delivered += 1
                if copies[0] != (message_id, *send):
                    violations.append(f"{device.name}: shows {what} as {tuple(copies[0])}")
    return _CopyCounts(expected, delivered, lost, shown_twice)


def check_order(devices: Sequence[DeviceSnapshot], violations: list[str]) -> int:
    """(b): every view in the one order, ascending message_id. Returns the
    number of (device, conversation) views out of order."""
    mismatches = 0
    for device in devices:
        for conversation_id, view in sorted(device.views.items()):
            shown = [e.message_id for e in view]
            canonical = sorted(set(shown))
            if shown == canonical:
                continue
            mismatches += 1
            at = next(
                (i for i, (a, b) in enumerate(zip(shown, canonical, strict=False)) if a != b),
                min(len(shown), len(canonical)),
            )
            violations.append(
                f"{device.name}: {conversation_id} out of order from position {at}:"
                f" shows {shown[at : at + 3]}, the order is {canonical[at : at + 3]}"
            )
    return mismatches


def check_storage(
    devices: Sequence[DeviceSnapshot], rows: Sequence[StoredRow], violations: list[str]
) -> int:
    """(c): one row per send, every ack backed by a row, every shown message
    stored. Returns the number of extra rows."""
    ids_by_send: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    by_id: dict[tuple[str, int], StoredRow] = {}
    for row in rows:
        send = (row.sender_user_id, row.sender_device_id, row.client_msg_id)
        ids_by_send[send].add(row.message_id)
        by_id[(row.conversation_id, row.message_id)] = row
    stored_twice = 0
    for (sender, sender_device, client_msg_id), ids in sorted(ids_by_send.items()):
        if len(ids) > 1:
            stored_twice += len(ids) - 1
            violations.append(
                f"stored twice: {sender}/{sender_device} {client_msg_id} as {sorted(ids)}"
            )
    for device in devices:
        for client_msg_id, (conversation_id, message_id) in sorted(device.acked.items()):
            stored = by_id.get((conversation_id, message_id))
            if stored is None:
                violations.append(
                    f"{device.name}: acked {client_msg_id} as {message_id} in"
                    f" {conversation_id}, but no such row is stored"
                )
            elif (stored.sender_user_id, stored.sender_device_id, stored.client_msg_id) != (
                device.user_id,
                device.device_id,
                client_msg_id,
            ):
                violations.append(
                    f"{device.name}: acked {client_msg_id} as {message_id}, but that row is"
                    f" {stored.sender_user_id}/{stored.sender_device_id} {stored.client_msg_id}"
                )
        for conversation_id, view in sorted(device.views.items()):
            for entry in view:
                if (conversation_id, entry.message_id) not in by_id:
                    violations.append(
                        f"{device.name}: shows {entry.message_id} in {conversation_id},"
                        " which is not stored"
                    )
    return stored_twice


def check_devices(devices: Sequence[DeviceSnapshot], violations: list[str]) -> None:
    """(d) and what the devices noticed themselves: drained outboxes, no
    refused sends, no anomalies (two ids for one send, incomplete syncs)."""
    for device in devices:
        if device.unacked:
            violations.append(
                f"{device.name}: {len(device.unacked)} send(s) never acked:"
                f" {', '.join(sorted(device.unacked)[:5])}"
            )
        violations.extend(f"{device.name}: failure: {f}" for f in device.failures)
        violations.extend(f"{device.name}: anomaly: {a}" for a in device.anomalies)
