"""The chatmesh client library: the client side of the WebSocket protocol.

- ``ClientProtocol`` (``protocol``): what a device does (outbox and resend
  under the same client_msg_id, catch-up from a cursor, a duplicate-free local
  store, delivered receipts) as a state machine without I/O.
- ``SyncRun`` / ``run_sync`` (``sync``): one catch-up, over any request function.
- ``Connection`` (``connection``): one WebSocket with replies matched to
  requests; ``tls_context`` trusts a CA file for ``wss://`` edges.
- ``Device`` (``device``): ``ClientProtocol`` over reconnecting WebSockets.
- ``upload_media`` / ``download_media`` (``media``): media bytes to and from
  the object store through the URLs the server signs.

``python -m chatmesh.client USER DEVICE`` chats by hand through it.
"""

from chatmesh.client.connection import Connection, NoHello, text_send, tls_context
from chatmesh.client.device import Device
from chatmesh.client.media import MediaError, download_media, download_url, upload_media
from chatmesh.client.protocol import (
    ChannelActivity,
    ClientOptions,
    ClientProtocol,
    ClientStats,
    Event,
    FrameReceived,
    MessageAdded,
    ReceiptCountsChanged,
    SendFailed,
    SyncFinished,
    WatermarkChanged,
)
from chatmesh.client.store import MessageStore, SendKey, send_key
from chatmesh.client.sync import SyncFailed, SyncOutcome, SyncResult, SyncRun, run_sync

__all__ = [
    "ChannelActivity",
    "ClientOptions",
    "ClientProtocol",
    "ClientStats",
    "Connection",
    "Device",
    "Event",
    "FrameReceived",
    "MediaError",
    "MessageAdded",
    "MessageStore",
    "NoHello",
    "ReceiptCountsChanged",
    "SendFailed",
    "SendKey",
    "SyncFailed",
    "SyncFinished",
    "SyncOutcome",
    "SyncResult",
    "SyncRun",
    "WatermarkChanged",
    "download_media",
    "download_url",
    "run_sync",
    "send_key",
    "text_send",
    "tls_context",
    "upload_media",
]
