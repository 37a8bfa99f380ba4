"""Media uploads and downloads: the rules, whoever asks (a client frame or
the gRPC MediaService).

An upload is declared first (kind, type, size, SHA-256), counted against
the user's daily quota and answered with a URL whose signature binds the
declaration; the client PUTs the bytes to the object store and completes
the upload, which checks the stored object. Only then may a message carry
it: a message of the uploader's, or a forward by anyone who can read a
message that carries it. Whoever can read such a message may fetch the
bytes through a short-lived URL. Someone else's upload, an incomplete one
and an unknown id all get the same answer, so media ids cannot be probed.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable

from google.protobuf.message import DecodeError

from chatmesh.clock import Clock
from chatmesh.errors import FailedPrecondition, InvalidArgument, NotFound
from chatmesh.v1 import client_pb2, common_pb2
from msgsvc.access import MAX_CONVERSATION_ID_CHARS
from msgsvc.media.limits import check_presentation, check_upload
from msgsvc.media.objects import ObjectStore
from msgsvc.media.settings import MediaSettings
from msgsvc.media.store import DailyQuota, MediaStore, Upload

_MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def new_media_id() -> str:
    # 144 random bits: ids say nothing about who uploaded what, or when.
    return secrets.token_urlsafe(18)


def object_key(media_id: str) -> str:
    return f"media/{media_id}"


def _not_found() -> NotFound:
    return NotFound("MEDIA_NOT_FOUND", "no such media")


def _checked_media_id(media_id: str) -> str:
    if not media_id:
        raise InvalidArgument("MISSING_MEDIA_ID", "media_id is required")
    if not _MEDIA_ID.match(media_id):
        raise _not_found()
    return media_id


def attachment_of(upload: Upload) -> common_pb2.MediaAttachment:
    return common_pb2.MediaAttachment(
        media_id=upload.media_id,
        content_type=upload.content_type,
        size_bytes=upload.size_bytes,
        sha256=upload.sha256,
    )


class MediaService:
    def __init__(
        self,
        *,
        store: MediaStore,
        objects: ObjectStore,
        settings: MediaSettings,
        clock: Clock,
        new_id: Callable[[], str] = new_media_id,
    ) -> None:
        self._store = store
        self._objects = objects
        self._settings = settings
        self._clock = clock
        self._new_id = new_id

    async def create_upload(
        self, user_id: str, frame: client_pb2.CreateUploadFrame
    ) -> client_pb2.UploadFrame:
        check_upload(frame.kind, frame.content_type, frame.size_bytes, frame.sha256)
        now_ms = self._clock.now_ms()
        media_id = self._new_id()
        upload = Upload(
            media_id=media_id,
            owner_user_id=user_id,
            kind=frame.kind,
            content_type=frame.content_type,
            size_bytes=frame.size_bytes,
            sha256=frame.sha256,
            object_key=object_key(media_id),
            expires_at_ms=now_ms + self._settings.upload_url_ttl_s * 1000,
            completed=False,
        )
        day = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC).date()
        quota = DailyQuota(self._settings.daily_uploads, self._settings.daily_upload_bytes)
        await self._store.create(upload, day, quota)
        signed = await self._objects.sign_upload(
            upload.object_key,
            content_type=upload.content_type,
            size_bytes=upload.size_bytes,
            sha256=upload.sha256,
            ttl_s=self._settings.upload_url_ttl_s,
        )
        answer = client_pb2.UploadFrame(
            media_id=media_id,
            state=client_pb2.UPLOAD_STATE_PENDING,
            upload_url=signed.url,
            expires_at_ms=upload.expires_at_ms,
            media=attachment_of(upload),
        )
        answer.upload_headers.update(signed.headers)
        return answer

    async def complete_upload(self, user_id: str, media_id: str) -> client_pb2.UploadFrame:
        upload = await self._store.get(_checked_media_id(media_id))
        if upload is None or upload.owner_user_id != user_id:
            raise _not_found()
        if not upload.completed:
            now_ms = self._clock.now_ms()
            if now_ms >= upload.expires_at_ms:
                raise _expired()
            stored = await self._objects.head(upload.object_key)
            if stored is None:
                raise FailedPrecondition(
                    "MEDIA_NOT_UPLOADED", "nothing was uploaded yet: PUT the bytes to upload_url"
                )
            if (
                stored.size_bytes != upload.size_bytes
                or stored.content_type != upload.content_type
                or stored.sha256 != upload.sha256
            ):
                # The signature should have made this impossible; whatever
                # got there is not what was declared. Gone, so a correct PUT
                # to the same URL can still follow.
                await self._objects.delete([upload.object_key])
                raise FailedPrecondition(
                    "MEDIA_MISMATCH", "the stored object is not what the upload declared"
                )
            if not await self._store.complete(upload.media_id, now_ms):
                raise _expired()
        return client_pb2.UploadFrame(
            media_id=upload.media_id,
            state=client_pb2.UPLOAD_STATE_COMPLETE,
            media=attachment_of(upload),
        )

    async def download_url(
        self, user_id: str, frame: client_pb2.GetDownloadUrlFrame
    ) -> client_pb2.DownloadUrlFrame:
        media_id = _checked_media_id(frame.media_id)
        if len(frame.conversation_id) > MAX_CONVERSATION_ID_CHARS:
            raise _not_found()
        upload = await self._store.get(media_id)
        if upload is None or not upload.completed:
            raise _not_found()
        readable = (not frame.conversation_id and upload.owner_user_id == user_id) or (
            await self._store.readable(media_id, user_id, frame.conversation_id or None)
        )
        if not readable:
            raise _not_found()
        ttl_s = self._settings.download_url_ttl_s
        return client_pb2.DownloadUrlFrame(
            media_id=media_id,
            url=await self._objects.sign_download(upload.object_key, ttl_s=ttl_s),
            expires_at_ms=self._clock.now_ms() + ttl_s * 1000,
            media=attachment_of(upload),
        )

    async def attach(self, sender_user_id: str, kind: int, given: bytes) -> bytes:
        """The attachment a message of ``kind`` stores for the media the
        sender gave (encoded): checked, with the upload's own facts filled
        in. Deterministic, so a retried send digests the same."""
        try:
            media = common_pb2.MediaAttachment.FromString(given)
        except DecodeError as exc:
            raise InvalidArgument("MALFORMED_MEDIA", "media is not a MediaAttachment") from exc
        check_presentation(kind, media)
        upload = await self._store.get(_checked_media_id(media.media_id))
        if upload is None:
            raise _not_found()
        if upload.owner_user_id != sender_user_id and not await self._store.readable(
            upload.media_id, sender_user_id, None
        ):
            raise _not_found()
        if not upload.completed:
            raise FailedPrecondition("UPLOAD_NOT_COMPLETE", "complete the upload before sending it")
        if upload.kind != kind:
            raise InvalidArgument(
                "MEDIA_KIND_MISMATCH", "the message kind differs from the upload's kind"
            )
        if (
            (media.content_type and media.content_type != upload.content_type)
            or (media.size_bytes and media.size_bytes != upload.size_bytes)
            or (media.sha256 and media.sha256 != upload.sha256)
        ):
            raise InvalidArgument(
                "MEDIA_MISMATCH", "content_type, size_bytes or sha256 differ from the upload's"
            )
        stored = attachment_of(upload)
        stored.width = media.width
        stored.height = media.height
        stored.duration_ms = media.duration_ms
        stored.thumbnail = media.thumbnail
        stored.blurhash = media.blurhash
        stored.file_name = media.file_name
        return stored.SerializeToString(deterministic=True)

    async def reference(self, attachment: bytes, conversation_id: str, message_id: int) -> None:
        """Records that a message carries the media (before it is written):
        from then on the conversation's members may fetch it."""
        media_id = common_pb2.MediaAttachment.FromString(attachment).media_id
        await self._store.reference(media_id, conversation_id, message_id)


def _expired() -> FailedPrecondition:
    return FailedPrecondition("UPLOAD_EXPIRED", "the upload URL has expired; start a new upload")
