"""What the chaos checker needs of a ``chatmesh.client.Device``.

The devices themselves are the client library's: the test exercises the
client contract every app follows (``chatmesh.client.protocol``), not a
copy of it.
"""

from __future__ import annotations

from chatmesh.client import Device
from tests.e2e.checker import DeviceSnapshot, ViewEntry


def snapshot(device: Device) -> DeviceSnapshot:
    """What the device holds and noticed, for ``tests.e2e.checker.check``."""
    protocol = device.protocol
    views = {
        conversation_id: tuple(
            ViewEntry(m.message_id, m.sender_user_id, m.sender_device_id, m.client_msg_id)
            for m in protocol.store.messages(conversation_id)
        )
        for conversation_id in protocol.store.conversation_ids()
    }
    return DeviceSnapshot(
        user_id=device.user_id,
        device_id=device.device_id,
        views=views,
        acked=dict(protocol.acked),
        unacked=tuple(protocol.outbox),
        failures=(*protocol.failures, *device.errors),
        anomalies=tuple(protocol.anomalies),
        received=sum(protocol.stats.received.values()),
        duplicates_filtered=protocol.stats.duplicates_filtered,
    )


def brief(device: Device) -> str:
    """One line of counts, for the test's report."""
    s = device.protocol.stats
    return (
        f"connects={s.connects} connect_failures={device.connect_failures}"
        f" disconnects={device.disconnects} sends={s.sends}"
        f" transmissions={s.transmissions} acks={s.acks}"
        f" received={dict(s.received)} dup={s.duplicates_filtered}"
        f" syncs={s.syncs} sync_retries={s.sync_retries}"
        f" sync_required={dict(s.sync_required)} unavailable={dict(s.unavailable)}"
        f" unmatched_errors={dict(s.unmatched_errors)}"
        f" marks={s.marks_sent}/{s.marks_answered} receipt_events={s.receipt_events}"
        f" late_replies={s.late_replies} gateways={dict(s.gateways)}"
    )
