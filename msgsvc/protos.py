"""Domain values to protobuf, in one place for the gRPC and frame edges."""

from __future__ import annotations

from chatmesh.v1 import common_pb2
from msgsvc.model import ConversationView
from msgsvc.storage.directory import MemberState


def watermark(state: MemberState) -> common_pb2.Watermark:
    return common_pb2.Watermark(
        conversation_id=state.conversation_id,
        user_id=state.user_id,
        delivered_message_id=state.delivered_message_id,
        read_message_id=state.read_message_id,
    )


def conversation_summary(view: ConversationView) -> common_pb2.ConversationSummary:
    summary = common_pb2.ConversationSummary(
        conversation_id=view.conversation_id,
        kind=view.kind,  # type: ignore[arg-type]  # stored values mirror ConversationKind
        title=view.title,
        member_user_ids=view.member_ids,
        unread_count=view.unread_count,
        member_watermarks=[watermark(s) for s in view.member_watermarks],
    )
    if view.last_message is not None:
        summary.last_message.CopyFrom(view.last_message.to_proto())
    return summary
