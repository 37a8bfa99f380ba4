"""A device's local copy of its conversations: each message once, in id order.

Copies of one message arrive from several places (the sender's ack, live
deliveries, every sync that re-reads a window) and may repeat. A message is
identified by its ``message_id``, and a send by (sender user, sender device,
client_msg_id): the store keeps the first copy of each and reports copies
that contradict what it holds, which a correct server never produces.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from chatmesh.v1 import common_pb2

SendKey = tuple[str, str, str]  # (sender_user_id, sender_device_id, client_msg_id)


def send_key(message: common_pb2.Message) -> SendKey:
    return (message.sender_user_id, message.sender_device_id, message.client_msg_id)


@dataclass(frozen=True, slots=True)
class Stored:
    added: bool  # False: a copy of a message already held
    anomaly: str = ""  # set when the copy contradicts what is held


class MessageStore:
    def __init__(self) -> None:
        self._by_conversation: dict[str, dict[int, common_pb2.Message]] = {}
        self._id_of_send: dict[SendKey, int] = {}

    def add(self, message: common_pb2.Message) -> Stored:
        held = self._by_conversation.setdefault(message.conversation_id, {})
        key = send_key(message)
        # System messages (group changes) carry no client_msg_id: only their id names them.
        known_id = self._id_of_send.get(key) if message.client_msg_id else None
        same_id = held.get(message.message_id)
        anomaly = ""
        if known_id is not None and known_id != message.message_id:
            anomaly = f"send {key} seen as {known_id} and as {message.message_id}"
        elif same_id is not None and send_key(same_id) != key:
            anomaly = f"message {message.message_id} seen as {send_key(same_id)} and as {key}"
        if known_id is not None or same_id is not None:
            return Stored(added=False, anomaly=anomaly)
        held[message.message_id] = message
        if message.client_msg_id:
            self._id_of_send[key] = message.message_id
        return Stored(added=True)

    def conversation_ids(self) -> list[str]:
        return sorted(self._by_conversation)

    def messages(self, conversation_id: str) -> list[common_pb2.Message]:
        """The conversation as displayed: message_id order, each message once."""
        held = self._by_conversation.get(conversation_id, {})
        return [held[i] for i in sorted(held)]

    def newest_id(self, conversation_id: str) -> int:
        return max(self._by_conversation.get(conversation_id, {}), default=0)

    def has(self, conversation_id: str, message_id: int) -> bool:
        return message_id in self._by_conversation.get(conversation_id, {})

    def held_ids(self, conversation_id: str, lowest: int, at_most: int) -> list[int]:
        """The ``at_most`` smallest ids held in the conversation that are at
        least ``lowest``, ascending: what a sync page request names as held."""
        held = self._by_conversation.get(conversation_id, {})
        return heapq.nsmallest(at_most, (i for i in held if i >= lowest))
