"""The message service's domain objects, wired once and shared by its edges."""

from __future__ import annotations

from dataclasses import dataclass

from msgsvc.conversation_list import ConversationLister
from msgsvc.effects import Effects
from msgsvc.group_receipts import GroupReceipts
from msgsvc.groups import Groups
from msgsvc.history import HistoryReader
from msgsvc.media.service import MediaService
from msgsvc.push_settings import PushSettings
from msgsvc.receipts import ReceiptTracker
from msgsvc.sending import MessageSender
from msgsvc.sync import SyncReader


@dataclass(frozen=True, slots=True)
class Messaging:
    sender: MessageSender
    history: HistoryReader
    sync: SyncReader
    receipts: ReceiptTracker
    conversations: ConversationLister
    groups: Groups
    group_receipts: GroupReceipts
    effects: Effects
    push_settings: PushSettings
    media: MediaService
