"""Media from a client's side: declare, PUT the bytes to the object store,
complete; and fetch a message's media. Bytes go over plain HTTP(S) to the
pre-signed URLs the server hands out, never over the chat connection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import httpx

from chatmesh.v1 import client_pb2, common_pb2

# One request over the chat connection: a Connection's or a Device's request.
Request = Callable[[client_pb2.ClientFrame], Awaitable[client_pb2.ServerFrame]]


class MediaError(Exception):
    """The server refused a media request, or the object store a transfer."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def _answer(frame: client_pb2.ServerFrame, kind: str) -> client_pb2.ServerFrame:
    if frame.WhichOneof("kind") == "error":
        raise MediaError(frame.error.reason, frame.error.message)
    if frame.WhichOneof("kind") != kind:
        raise MediaError("UNEXPECTED_FRAME", f"expected {kind}, got {frame.WhichOneof('kind')}")
    return frame


async def upload_media(
    request: Request,
    http: httpx.AsyncClient,
    data: bytes,
    *,
    kind: int,
    content_type: str,
) -> common_pb2.MediaAttachment:
    """Uploads ``data`` and returns the attachment to send it with: the
    server's facts of the bytes; add width and height, duration_ms,
    thumbnail, blurhash or file_name before sending."""
    created = _answer(
        await request(
            client_pb2.ClientFrame(
                create_upload=client_pb2.CreateUploadFrame(
                    kind=kind,  # type: ignore[arg-type]
                    content_type=content_type,
                    size_bytes=len(data),
                    sha256=hashlib.sha256(data).digest(),
                )
            )
        ),
        "upload",
    ).upload
    put = await http.put(created.upload_url, content=data, headers=dict(created.upload_headers))
    if put.status_code != 200:
        raise MediaError("UPLOAD_REFUSED", f"the object store answered {put.status_code}")
    completed = _answer(
        await request(
            client_pb2.ClientFrame(
                complete_upload=client_pb2.CompleteUploadFrame(media_id=created.media_id)
            )
        ),
        "upload",
    ).upload
    return completed.media


async def download_url(
    request: Request, media_id: str, conversation_id: str
) -> client_pb2.DownloadUrlFrame:
    return _answer(
        await request(
            client_pb2.ClientFrame(
                get_download_url=client_pb2.GetDownloadUrlFrame(
                    media_id=media_id, conversation_id=conversation_id
                )
            )
        ),
        "download_url",
    ).download_url


async def download_media(
    request: Request, http: httpx.AsyncClient, message: common_pb2.Message
) -> bytes:
    """The bytes of a message's media, checked against its SHA-256."""
    url = await download_url(request, message.media.media_id, message.conversation_id)
    got = await http.get(url.url)
    if got.status_code != 200:
        raise MediaError("DOWNLOAD_REFUSED", f"the object store answered {got.status_code}")
    if hashlib.sha256(got.content).digest() != message.media.sha256:
        raise MediaError("CHECKSUM_MISMATCH", "the downloaded bytes do not match the message")
    return got.content
