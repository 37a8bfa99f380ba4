"""The client library's core, driven by hand: no network, time passed in."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from chatmesh.client import (
    ClientOptions,
    ClientProtocol,
    MessageAdded,
    SendFailed,
    SyncFinished,
    SyncRun,
)
from chatmesh.v1 import client_pb2, common_pb2

HELLO = client_pb2.HelloFrame(user_id="alice", device_id="phone", gateway_id="gw1")
UNAVAILABLE = common_pb2.ERROR_CODE_UNAVAILABLE


def _message(
    message_id: int,
    conversation: str = "c1",
    sender: str = "bob",
    device: str = "laptop",
    client_msg_id: str = "",
) -> common_pb2.Message:
    return common_pb2.Message(
        message_id=message_id,
        conversation_id=conversation,
        sender_user_id=sender,
        sender_device_id=device,
        client_msg_id=client_msg_id or f"{sender}-{message_id}",
        kind=common_pb2.MESSAGE_KIND_TEXT,
        body=b"hi",
    )


def _summary(request_id: str, *conversations: str, cursor: str = "next") -> client_pb2.ServerFrame:
    return client_pb2.ServerFrame(
        sync_summary=client_pb2.SyncSummaryFrame(
            request_id=request_id,
            conversations=[
                common_pb2.ConversationSummary(conversation_id=c) for c in conversations
            ],
            next_cursor=cursor,
        )
    )


def _page(
    request_id: str, conversation: str, ids: list[int], token: str = ""
) -> client_pb2.ServerFrame:
    return client_pb2.ServerFrame(
        sync_page=client_pb2.SyncPageFrame(
            request_id=request_id,
            conversation_id=conversation,
            messages=[_message(i, conversation) for i in ids],
            next_page_token=token,
        )
    )


def _ack(frame: client_pb2.ClientFrame, message_id: int) -> client_pb2.ServerFrame:
    return client_pb2.ServerFrame(
        ack=client_pb2.AckFrame(
            request_id=frame.request_id,
            client_msg_id=frame.send.client_msg_id,
            message_id=message_id,
            conversation_id="c1",
        )
    )


def _error(frame: client_pb2.ClientFrame, code: int, reason: str) -> client_pb2.ServerFrame:
    return client_pb2.ServerFrame(
        error=client_pb2.ErrorFrame(
            request_id=frame.request_id,
            client_msg_id=frame.send.client_msg_id,
            code=code,  # type: ignore[arg-type]
            reason=reason,
        )
    )


def _caught_up(protocol: ClientProtocol, now: float = 0.0) -> None:
    """Connects and answers the catch-up sync with nothing changed."""
    protocol.connected(HELLO)
    (sync,) = protocol.frames_to_send(now)
    protocol.receive(_summary(sync.request_id), now)


def test_sends_wait_for_the_catch_up_and_the_cursor_moves_only_once_every_page_is_in() -> None:
    protocol = ClientProtocol("alice", "phone")
    client_msg_id = protocol.send(to_user="bob", body=b"hello")
    assert protocol.frames_to_send(0.0) == []  # not connected

    protocol.connected(HELLO)
    (sync,) = protocol.frames_to_send(0.0)
    assert sync.sync.cursor == ""
    protocol.receive(_summary(sync.request_id, "c1", "c2", cursor="k1"), 0.0)
    (first_page,) = protocol.frames_to_send(0.0)  # one page in flight by default
    assert first_page.sync_conversation.conversation_id == "c1"
    protocol.receive(_page(first_page.request_id, "c1", [1, 2], token="t"), 0.0)
    (second_page,) = protocol.frames_to_send(0.0)
    assert (second_page.sync_conversation.page_token, second_page.sync_conversation.cursor) == (
        "t",
        "",  # the cursor sent in the sync, not the new one
    )
    assert protocol.cursor == ""
    protocol.receive(_page(second_page.request_id, "c1", [3]), 0.0)
    (third_page,) = protocol.frames_to_send(0.0)
    protocol.receive(_page(third_page.request_id, "c2", [4]), 0.0)

    assert protocol.cursor == "k1"
    (send,) = protocol.frames_to_send(0.0)
    assert (send.send.client_msg_id, send.send.to_user_id) == (client_msg_id, "bob")
    events = protocol.events()
    assert [e.message.message_id for e in events if isinstance(e, MessageAdded)] == [1, 2, 3, 4]
    assert [e.outcome.pages for e in events if isinstance(e, SyncFinished)] == [3]


def test_page_requests_name_the_held_ids_from_the_window_floor_up_lowest_first() -> None:
    protocol = ClientProtocol("alice", "phone")
    _caught_up(protocol)
    for i in (5, 10, 11, 12, 20, *range(100, 400)):
        protocol.receive(
            client_pb2.ServerFrame(deliver=client_pb2.DeliverFrame(message=_message(i))), 0.0
        )
    protocol.request_sync()
    (sync,) = protocol.frames_to_send(1.0)
    summary = _summary(sync.request_id, "c1", "c2")
    summary.sync_summary.window_floor_id = 10
    protocol.receive(summary, 1.0)
    (first,) = protocol.frames_to_send(1.0)
    held = list(first.sync_conversation.held_message_ids)
    assert held[:4] == [10, 11, 12, 20]  # 5 is below the floor: never re-read
    assert len(held) == 256 and held[-1] == 351  # the lowest 256: the page starts there
    protocol.receive(_page(first.request_id, "c1", [13, 14], token="t"), 1.0)
    (second,) = protocol.frames_to_send(1.0)
    # Only ids above the previous page's last message can still come.
    assert list(second.sync_conversation.held_message_ids)[:2] == [20, 100]
    protocol.receive(_page(second.request_id, "c1", []), 1.0)
    (other,) = protocol.frames_to_send(1.0)
    assert list(other.sync_conversation.held_message_ids) == []  # nothing held in c2

    off = ClientProtocol("alice", "phone", options=ClientOptions(sync_names_held=False))
    _caught_up(off)
    off.receive(client_pb2.ServerFrame(deliver=client_pb2.DeliverFrame(message=_message(10))), 0.0)
    off.request_sync()
    (sync,) = off.frames_to_send(1.0)
    off.receive(_summary(sync.request_id, "c1"), 1.0)
    (page,) = off.frames_to_send(1.0)
    assert list(page.sync_conversation.held_message_ids) == []


def test_an_unacknowledged_send_is_resent_with_the_same_id_until_acked_once() -> None:
    options = ClientOptions(ack_timeout_s=3.0, unavailable_retry_s=(0.2, 0.2))
    protocol = ClientProtocol("alice", "phone", options=options)
    _caught_up(protocol)
    client_msg_id = protocol.send(to_user="bob", body=b"hello")
    (first,) = protocol.frames_to_send(0.0)
    assert protocol.frames_to_send(2.9) == []
    (resent,) = protocol.frames_to_send(3.0)  # no ack in time
    protocol.receive(_error(resent, UNAVAILABLE, "UPSTREAM_RESET"), 3.1)
    assert protocol.next_wakeup() == 3.1 + 0.2
    (third,) = protocol.frames_to_send(3.4)
    assert {f.send.client_msg_id for f in (first, resent, third)} == {client_msg_id}

    protocol.receive(_ack(third, 42), 3.45)
    protocol.receive(_ack(first, 42), 3.5)  # a late answer to an earlier attempt
    assert protocol.outbox == {}
    assert protocol.acked == {client_msg_id: ("c1", 42)}
    assert protocol.store.messages("c1")[0].body == b"hello"
    assert protocol.anomalies == []
    assert protocol.frames_to_send(10.0) == []


def test_resends_without_an_ack_wait_twice_as_long_each_time_until_a_connect() -> None:
    options = ClientOptions(ack_timeout_s=3.0, ack_timeout_max_s=10.0)
    protocol = ClientProtocol("alice", "phone", options=options)
    _caught_up(protocol)
    protocol.send(to_user="bob", body=b"hello")
    sent_at = []
    now = 0.0
    while now < 40.0:
        if protocol.frames_to_send(now):
            sent_at.append(now)
        now = round(now + 0.5, 1)
    # 3 s, then 6, then capped at 10: a slow server is not sent it every 3 s.
    assert sent_at == [0.0, 3.0, 9.0, 19.0, 29.0, 39.0]
    protocol.disconnected()
    _caught_up(protocol, 40.0)
    assert len(protocol.frames_to_send(40.0)) == 1  # resent at once on the new connection
    assert protocol.frames_to_send(42.9) == []
    assert len(protocol.frames_to_send(43.0)) == 1  # and the base timeout again


def test_a_send_refused_for_the_users_rate_is_resent_later_not_dropped() -> None:
    options = ClientOptions(rate_limited_retry_s=(1.5, 1.5))
    protocol = ClientProtocol("alice", "phone", options=options)
    _caught_up(protocol)
    client_msg_id = protocol.send(to_user="bob", body=b"hello")
    (send,) = protocol.frames_to_send(0.0)
    limited = _error(send, common_pb2.ERROR_CODE_RESOURCE_EXHAUSTED, "RATE_LIMITED")
    protocol.receive(limited, 0.1)
    assert client_msg_id in protocol.outbox
    assert protocol.frames_to_send(1.5) == []
    (again,) = protocol.frames_to_send(1.6)
    assert again.send.client_msg_id == client_msg_id
    protocol.receive(_ack(again, 7), 1.7)
    assert protocol.acked == {client_msg_id: ("c1", 7)}
    assert protocol.failures == []
    assert protocol.stats.rate_limited == 1


def test_a_refused_send_leaves_the_outbox_as_a_failure() -> None:
    protocol = ClientProtocol("alice", "phone")
    _caught_up(protocol)
    protocol.send(to_user="bob", body=b"hello")
    (send,) = protocol.frames_to_send(0.0)
    protocol.receive(_error(send, common_pb2.ERROR_CODE_NOT_FOUND, "USER_NOT_FOUND"), 0.1)
    assert protocol.outbox == {}
    (failed,) = [e for e in protocol.events() if isinstance(e, SendFailed)]
    assert failed.error.reason == "USER_NOT_FOUND"


def test_a_sync_cut_short_runs_again_from_the_old_cursor() -> None:
    options = ClientOptions(request_timeout_s=5.0, sync_retry_s=(0.5, 0.5))
    protocol = ClientProtocol("alice", "phone", options=options)
    protocol.cursor = "k0"
    protocol.connected(HELLO)
    (sync,) = protocol.frames_to_send(0.0)
    protocol.receive(_summary(sync.request_id, "c1", cursor="k1"), 0.0)
    (page,) = protocol.frames_to_send(0.0)
    assert protocol.frames_to_send(4.9) == []
    assert protocol.frames_to_send(5.0) == []  # timed out: retried after a pause
    protocol.receive(_page(page.request_id, "c1", [7]), 5.1)  # too late: ignored
    assert protocol.stats.late_replies == 1
    (again,) = protocol.frames_to_send(5.5)
    assert again.sync.cursor == "k0"
    protocol.receive(
        client_pb2.ServerFrame(
            error=client_pb2.ErrorFrame(request_id=again.request_id, code=UNAVAILABLE)
        ),
        5.6,
    )
    (third,) = protocol.frames_to_send(6.1)
    protocol.receive(_summary(third.request_id, cursor="k2"), 6.2)
    assert protocol.cursor == "k2"
    assert protocol.stats.sync_retries == 2


def test_a_connection_lost_mid_sync_resyncs_on_the_next_and_resends_the_outbox() -> None:
    protocol = ClientProtocol("alice", "phone")
    _caught_up(protocol)
    client_msg_id = protocol.send(to_user="bob", body=b"hello")
    protocol.frames_to_send(0.0)
    protocol.receive(client_pb2.ServerFrame(sync_required=client_pb2.SyncRequiredFrame()), 0.1)
    (sync,) = protocol.frames_to_send(0.1)
    protocol.disconnected()
    assert protocol.frames_to_send(0.2) == []

    protocol.connected(HELLO)
    (resync,) = protocol.frames_to_send(1.0)
    assert resync.WhichOneof("kind") == "sync" and resync.request_id != sync.request_id
    protocol.receive(_summary(resync.request_id), 1.0)
    (resent,) = protocol.frames_to_send(1.0)  # resent at once, not at its old deadline
    assert resent.send.client_msg_id == client_msg_id


def test_copies_of_a_message_are_held_once_and_contradictions_reported() -> None:
    protocol = ClientProtocol("alice", "phone")
    _caught_up(protocol)
    deliver = client_pb2.ServerFrame(deliver=client_pb2.DeliverFrame(message=_message(5)))
    protocol.receive(deliver, 0.0)
    protocol.receive(deliver, 0.1)
    assert [m.message_id for m in protocol.store.messages("c1")] == [5]
    assert protocol.stats.duplicates_filtered == 1
    # The same send (bob/laptop bob-5) under a second id is a server bug.
    protocol.receive(
        client_pb2.ServerFrame(
            deliver=client_pb2.DeliverFrame(message=_message(6, client_msg_id="bob-5"))
        ),
        0.2,
    )
    assert protocol.anomalies == ["send ('bob', 'laptop', 'bob-5') seen as 5 and as 6 (deliver)"]


def test_two_devices_of_a_user_may_reuse_a_client_msg_id() -> None:
    protocol = ClientProtocol("alice", "phone")
    _caught_up(protocol)
    for message_id, device in ((5, "laptop"), (6, "tablet")):
        message = _message(message_id, device=device, client_msg_id="m1")
        protocol.receive(
            client_pb2.ServerFrame(deliver=client_pb2.DeliverFrame(message=message)), 0
        )
    assert [m.sender_device_id for m in protocol.store.messages("c1")] == ["laptop", "tablet"]
    assert protocol.anomalies == []


def test_delivered_receipts_report_the_newest_message_at_most_once_an_interval() -> None:
    options = ClientOptions(mark_delivered=True, mark_interval_s=1.0)
    protocol = ClientProtocol("alice", "phone", options=options)
    _caught_up(protocol)
    protocol.receive(
        client_pb2.ServerFrame(deliver=client_pb2.DeliverFrame(message=_message(5))), 0
    )
    (mark,) = protocol.frames_to_send(0.0)
    assert (mark.mark.conversation_id, mark.mark.message_id) == ("c1", 5)
    protocol.receive(
        client_pb2.ServerFrame(deliver=client_pb2.DeliverFrame(message=_message(9))), 0
    )
    assert protocol.frames_to_send(0.5) == []
    (later,) = protocol.frames_to_send(1.0)
    assert later.mark.message_id == 9


@given(
    server=st.lists(
        st.sampled_from(["ack", "ack-twice", "unavailable", "lost", "deliver-again"]),
        min_size=1,
        max_size=30,
    ),
    sends=st.integers(1, 5),
)
def test_whatever_the_server_does_each_send_is_acked_once_under_one_id(
    server: list[str], sends: int
) -> None:
    """Acks lost, repeated or late, UNAVAILABLE answers, repeated deliveries:
    every send ends up acked under one id, held once, and shown in id order."""
    options = ClientOptions(ack_timeout_s=1.0, unavailable_retry_s=(0.1, 0.1))
    protocol = ClientProtocol("alice", "phone", options=options, rng=random.Random(0))
    _caught_up(protocol)
    ids = {protocol.send(to_user="bob", body=f"m{i}".encode()): 100 + i for i in range(sends)}
    behaviours = iter(server)
    now = 0.0
    for _ in range(200):
        for frame in protocol.frames_to_send(now):
            behaviour = next(behaviours, "ack")
            if behaviour in ("ack", "ack-twice"):
                protocol.receive(_ack(frame, ids[frame.send.client_msg_id]), now)
            if behaviour == "ack-twice":
                protocol.receive(_ack(frame, ids[frame.send.client_msg_id]), now + 0.01)
            if behaviour == "unavailable":
                protocol.receive(_error(frame, UNAVAILABLE, "UPSTREAM_RESET"), now)
            if behaviour == "deliver-again":
                echo = _message(
                    ids[frame.send.client_msg_id],
                    sender="alice",
                    device="phone",
                    client_msg_id=frame.send.client_msg_id,
                )
                protocol.receive(
                    client_pb2.ServerFrame(deliver=client_pb2.DeliverFrame(message=echo)), now
                )
                protocol.receive(_ack(frame, ids[frame.send.client_msg_id]), now)
        if not protocol.outbox:
            break
        now += 0.25
    assert protocol.outbox == {}
    assert {c: m for c, (_, m) in protocol.acked.items()} == ids
    held = [m.message_id for m in protocol.store.messages("c1")]
    assert held == sorted(ids.values())
    assert protocol.anomalies == []


def test_a_sync_run_keeps_several_pages_in_flight_and_finishes_when_all_are_in() -> None:
    counter = iter(range(1, 100))
    run = SyncRun("", request_ids=lambda: f"r{next(counter)}", pages_in_flight=2)
    (sync,) = run.start().frames
    step = run.receive(_summary(sync.request_id, "a", "b", "c"))
    first, second = step.frames
    step = run.receive(_page(second.request_id, "b", [2]))
    (third,) = step.frames
    assert third.sync_conversation.conversation_id == "c"
    assert run.receive(_page(third.request_id, "c", [3])).outcome is None
    done = run.receive(_page(first.request_id, "a", [1]))
    assert done.outcome is not None and done.outcome.completed
    assert (done.outcome.pages, done.outcome.messages) == (3, 3)
