"""What may be uploaded, and how large, by message kind.

The limits are those of the big messengers, rounded: photos are sent
compressed, a video or a document may be large. Types are those a client on
any platform can display or hand to another app; anything else is refused
rather than stored as an opaque blob under a kind that promises otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatmesh.errors import InvalidArgument
from chatmesh.v1 import common_pb2

MiB = 1024 * 1024
SHA256_BYTES = 32
MAX_THUMBNAIL_BYTES = 4096
MAX_BLURHASH_CHARS = 100
MAX_FILE_NAME_CHARS = 255
MAX_CONTENT_TYPE_CHARS = 127
MAX_DIMENSION_PX = 32768
MAX_DURATION_MS = 24 * 3600 * 1000

# The BlurHash alphabet (base 83).
_BLURHASH = re.compile(r"^[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]{6,100}$")


@dataclass(frozen=True, slots=True)
class KindLimits:
    name: str
    max_bytes: int
    content_types: frozenset[str]
    dimensions: bool = False  # width and height are meaningful
    duration: bool = False  # duration_ms is meaningful
    file_name: bool = False


KINDS: dict[int, KindLimits] = {
    common_pb2.MESSAGE_KIND_IMAGE: KindLimits(
        "image",
        16 * MiB,
        frozenset(
            {"image/jpeg", "image/png", "image/webp", "image/gif", "image/heic", "image/avif"}
        ),
        dimensions=True,
    ),
    common_pb2.MESSAGE_KIND_VIDEO: KindLimits(
        "video",
        100 * MiB,
        frozenset({"video/mp4", "video/quicktime", "video/webm", "video/3gpp"}),
        dimensions=True,
        duration=True,
    ),
    common_pb2.MESSAGE_KIND_VOICE: KindLimits(
        "voice",
        16 * MiB,
        frozenset({"audio/ogg", "audio/mpeg", "audio/mp4", "audio/aac", "audio/webm", "audio/amr"}),
        duration=True,
    ),
    common_pb2.MESSAGE_KIND_DOCUMENT: KindLimits(
        "document",
        100 * MiB,
        frozenset(
            {
                "application/pdf",
                "application/zip",
                "application/octet-stream",
                "application/msword",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.ms-excel",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                "application/vnd.oasis.opendocument.text",
                "application/vnd.oasis.opendocument.spreadsheet",
                "text/plain",
                "text/csv",
                "application/json",
            }
        ),
        file_name=True,
    ),
}


def is_media_kind(kind: int) -> bool:
    return kind in KINDS


def limits_of(kind: int) -> KindLimits:
    limits = KINDS.get(kind)
    if limits is None:
        raise InvalidArgument(
            "UNKNOWN_MEDIA_KIND", "kind must be MESSAGE_KIND_IMAGE, _VIDEO, _VOICE or _DOCUMENT"
        )
    return limits


def check_upload(kind: int, content_type: str, size_bytes: int, sha256: bytes) -> KindLimits:
    """Raises ``InvalidArgument`` unless an upload so declared is allowed."""
    limits = limits_of(kind)
    if len(content_type) > MAX_CONTENT_TYPE_CHARS or content_type not in limits.content_types:
        raise InvalidArgument(
            "CONTENT_TYPE_NOT_ALLOWED",
            f"{content_type[:MAX_CONTENT_TYPE_CHARS]!r} is not allowed for {limits.name}"
            f" (allowed: {', '.join(sorted(limits.content_types))})",
        )
    if size_bytes <= 0:
        raise InvalidArgument("INVALID_SIZE", "size_bytes must be at least 1")
    if size_bytes > limits.max_bytes:
        raise InvalidArgument(
            "MEDIA_TOO_LARGE", f"{limits.name} uploads are at most {limits.max_bytes} bytes"
        )
    if len(sha256) != SHA256_BYTES:
        raise InvalidArgument("INVALID_SHA256", "sha256 must be the 32-byte SHA-256 of the bytes")
    return limits


def check_presentation(kind: int, media: common_pb2.MediaAttachment) -> None:
    """The fields a sender measures itself: bounded, and only those that
    mean something for the kind."""
    limits = limits_of(kind)
    if media.width > MAX_DIMENSION_PX or media.height > MAX_DIMENSION_PX:
        raise InvalidArgument(
            "INVALID_DIMENSIONS", f"width and height are at most {MAX_DIMENSION_PX}"
        )
    if not limits.dimensions and (media.width or media.height):
        raise InvalidArgument("INVALID_DIMENSIONS", f"{limits.name} media have no width or height")
    if media.duration_ms > MAX_DURATION_MS or (media.duration_ms and not limits.duration):
        raise InvalidArgument(
            "INVALID_DURATION", f"duration_ms is for video and voice, at most {MAX_DURATION_MS}"
        )
    if len(media.thumbnail) > MAX_THUMBNAIL_BYTES:
        raise InvalidArgument(
            "THUMBNAIL_TOO_LARGE", f"thumbnail is at most {MAX_THUMBNAIL_BYTES} bytes"
        )
    if media.blurhash and not _BLURHASH.match(media.blurhash):
        raise InvalidArgument(
            "INVALID_BLURHASH", f"blurhash must be 6 to {MAX_BLURHASH_CHARS} base-83 characters"
        )
    if media.file_name and not limits.file_name:
        raise InvalidArgument("INVALID_FILE_NAME", f"{limits.name} media have no file name")
    if len(media.file_name) > MAX_FILE_NAME_CHARS or any(c in media.file_name for c in "/\\\0"):
        raise InvalidArgument(
            "INVALID_FILE_NAME",
            f"file_name is at most {MAX_FILE_NAME_CHARS} characters, without path separators",
        )
