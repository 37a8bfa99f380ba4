"""What makes two send attempts the same send.

A ``client_msg_id`` is chosen by the sending device, so it identifies a send
only together with that device: ``SendKey`` is (user, device, client_msg_id),
the way Signal scopes its idempotency keys. Two devices of one user may both
number their sends ``m1``, ``m2``...; those are different messages. Sends a
service makes on a user's behalf carry no device and share one scope of their
own per user, apart from every device's.

Within one scope a key names one message. A second attempt is a retry only
if it carries the same content, which ``send_digest`` condenses so a claim can
hold it and compare it without reading the stored row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# 128 bits: an accidental collision between two sends of one device under one
# client_msg_id is out of reach; a deliberate one could only mislabel the
# colliding client's own message.
DIGEST_BYTES = 16
_PERSON = b"chatmesh-send-v1"  # domain separation; bump if the fields change


@dataclass(frozen=True, slots=True)
class SendKey:
    user_id: str
    device_id: str  # "": the user's service scope (a send with no device)
    client_msg_id: str

    @property
    def service_scope(self) -> bool:
        return not self.device_id


def send_digest(
    device_id: str, conversation_id: str, kind: int, body: bytes, media: bytes = b""
) -> str:
    """A digest of everything that must match for an attempt to be a retry:
    the device, the resolved conversation (so ``to_user_id`` and the same
    conversation's id are one target), the kind, the body and the media.
    A message without media digests as it did before media existed, so
    claims taken then still match their retries."""
    h = hashlib.blake2b(digest_size=DIGEST_BYTES, person=_PERSON)
    parts = [device_id.encode(), conversation_id.encode(), str(kind).encode(), body]
    if media:
        parts.append(media)
    for part in parts:
        # Length-prefixed, so no two different field tuples hash the same input.
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()
