"""Domain values to protobuf, in one place for the gRPC and frame edges."""

from __future__ import annotations

from chatmesh.v1 import common_pb2
from msgsvc.group_receipts import MemberReceipt
from msgsvc.groups import GroupView
from msgsvc.model import ConversationView
from msgsvc.storage.directory import Member, MemberState


def watermark(state: MemberState) -> common_pb2.Watermark:
    return common_pb2.Watermark(
        conversation_id=state.conversation_id,
        user_id=state.user_id,
        delivered_message_id=state.delivered_message_id,
        read_message_id=state.read_message_id,
    )


def member_receipt(receipt: MemberReceipt) -> common_pb2.MemberReceipt:
    return common_pb2.MemberReceipt(
        user_id=receipt.user_id, delivered=receipt.delivered, read=receipt.read
    )


def group_member(member: Member) -> common_pb2.GroupMember:
    return common_pb2.GroupMember(
        user_id=member.user_id,
        role=member.role,  # type: ignore[arg-type]  # stored values mirror MemberRole
        joined_message_id=member.joined_id,
    )


def group_info(group: GroupView) -> common_pb2.GroupInfo:
    return common_pb2.GroupInfo(
        conversation_id=group.conversation_id,
        title=group.title,
        created_by_user_id=group.created_by,
        members=[group_member(m) for m in group.members],
        max_members=group.max_members,
        kind=group.kind,  # type: ignore[arg-type]  # stored values mirror ConversationKind
    )


def conversation_summary(view: ConversationView) -> common_pb2.ConversationSummary:
    summary = common_pb2.ConversationSummary(
        conversation_id=view.conversation_id,
        kind=view.kind,  # type: ignore[arg-type]  # stored values mirror ConversationKind
        title=view.title,
        member_user_ids=view.member_ids,
        unread_count=view.unread_count,
        member_watermarks=[watermark(s) for s in view.member_watermarks],
        members=[group_member(m) for m in view.members],
        left=view.left,
    )
    if view.last_message is not None:
        summary.last_message.CopyFrom(view.last_message.to_proto())
    if view.last_receipts is not None:
        message_id, recipients, delivered, read = view.last_receipts
        summary.last_message_receipts.CopyFrom(
            common_pb2.ReceiptCounts(
                message_id=message_id, recipients=recipients, delivered=delivered, read=read
            )
        )
    return summary
