"""Media against the real stores: PostgreSQL for the records, Cassandra for
the messages, SeaweedFS behind pre-signed URLs for the bytes. Bytes go up
and down with plain HTTP, the way a client sends them, never with the SDK."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time

import asyncpg
import httpx
import pytest

from chatmesh.errors import (
    ChatmeshError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from chatmesh.v1 import client_pb2, common_pb2
from msgsvc.media.limits import MiB
from msgsvc.media.objects import S3ObjectStore, s3_object_store
from msgsvc.media.service import object_key
from msgsvc.media.settings import MediaSettings
from msgsvc.model import SendCommand, SendOutcome
from tests.conftest import Stores, add_users, unique
from tests.integration.conftest import MakeInstance
from tests.support.msgsvc_domain import Instance, ManualClock

IMAGE = common_pb2.MESSAGE_KIND_IMAGE
VIDEO = common_pb2.MESSAGE_KIND_VIDEO
DOCUMENT = common_pb2.MESSAGE_KIND_DOCUMENT
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


@pytest.fixture
def clock() -> ManualClock:
    # The object store checks URL expiry by its own clock: the same time.
    return ManualClock(time.time_ns() // 1_000_000)


@pytest.fixture
def node(make_instance: MakeInstance, clock: ManualClock) -> Instance:
    return make_instance(61, clock)


@pytest.fixture
async def people(pg_pool: asyncpg.Pool) -> list[str]:
    users = [unique(name) for name in ("ann", "ben", "cat", "dan")]
    await add_users(pg_pool, *users)
    return users


@pytest.fixture
async def http() -> httpx.AsyncClient:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client  # type: ignore[misc]


def declare(
    data: bytes, kind: int = IMAGE, content_type: str = "image/png"
) -> client_pb2.CreateUploadFrame:
    return client_pb2.CreateUploadFrame(
        kind=kind,
        content_type=content_type,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).digest(),
    )


async def put(
    http: httpx.AsyncClient, upload: client_pb2.UploadFrame, data: bytes, **headers: str
) -> int:
    sent = {**dict(upload.upload_headers), **headers}
    answer = await http.put(upload.upload_url, content=data, headers=sent)
    return answer.status_code


async def uploaded(
    node: Instance,
    http: httpx.AsyncClient,
    user: str,
    data: bytes = PNG,
    kind: int = IMAGE,
    content_type: str = "image/png",
) -> str:
    upload = await node.media.create_upload(user, declare(data, kind, content_type))
    assert await put(http, upload, data) == 200
    done = await node.media.complete_upload(user, upload.media_id)
    assert done.state == client_pb2.UPLOAD_STATE_COMPLETE
    return upload.media_id


async def send_media(
    node: Instance,
    sender: str,
    *,
    media: common_pb2.MediaAttachment,
    kind: int = IMAGE,
    to_user: str | None = None,
    conversation: str | None = None,
    caption: bytes = b"",
    client_msg_id: str | None = None,
) -> SendOutcome:
    return await node.sender.send(
        SendCommand(
            sender_user_id=sender,
            sender_device_id="phone",
            client_msg_id=client_msg_id or unique("m"),
            conversation_id=conversation,
            to_user_id=to_user,
            kind=kind,
            body=caption,
            media=media.SerializeToString(),
        )
    )


async def download(
    node: Instance, http: httpx.AsyncClient, user: str, media_id: str, conversation: str
) -> bytes:
    url = await node.media.download_url(
        user, client_pb2.GetDownloadUrlFrame(media_id=media_id, conversation_id=conversation)
    )
    answer = await http.get(url.url)
    assert answer.status_code == 200, answer.text
    return answer.content


async def test_upload_complete_send_and_a_recipient_gets_identical_bytes(
    node: Instance, people: list[str], http: httpx.AsyncClient
) -> None:
    ann, ben, *_ = people
    media_id = await uploaded(node, http, ann)
    sent = await send_media(
        node,
        ann,
        to_user=ben,
        caption=b"the view",
        media=common_pb2.MediaAttachment(
            media_id=media_id,
            width=640,
            height=480,
            thumbnail=b"\xff\xd8tiny",
            blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj",
        ),
    )
    stored = sent.message.to_proto()
    assert stored.kind == IMAGE and stored.body == b"the view"
    # The server's own facts of the bytes, the sender's of the layout.
    assert stored.media.content_type == "image/png"
    assert stored.media.size_bytes == len(PNG)
    assert stored.media.sha256 == hashlib.sha256(PNG).digest()
    assert (stored.media.width, stored.media.height) == (640, 480)
    # As history serves it to the recipient.
    page = await node.history.page(ben, sent.message.conversation_id, page_token="", page_size=10)
    assert page.messages[0].to_proto().media == stored.media
    assert await download(node, http, ben, media_id, sent.message.conversation_id) == PNG


async def test_a_put_with_other_bytes_size_or_type_is_refused_by_the_store(
    node: Instance, people: list[str], http: httpx.AsyncClient, media_objects: S3ObjectStore
) -> None:
    ann = people[0]
    upload = await node.media.create_upload(ann, declare(PNG))
    tampered = bytearray(PNG)
    tampered[100] ^= 0xFF
    assert await put(http, upload, bytes(tampered)) == 400  # checksum: BadDigest
    assert await put(http, upload, PNG + b"!", **{"Content-Length": str(len(PNG) + 1)}) == 403
    assert await put(http, upload, PNG, **{"Content-Type": "image/jpeg"}) == 403
    # Nothing was stored, so it cannot be completed.
    assert await media_objects.head(object_key(upload.media_id)) is None
    with pytest.raises(FailedPrecondition) as refused:
        await node.media.complete_upload(ann, upload.media_id)
    assert refused.value.reason == "MEDIA_NOT_UPLOADED"
    # The right bytes still go through the same URL.
    assert await put(http, upload, PNG) == 200
    assert (
        await node.media.complete_upload(ann, upload.media_id)
    ).state == client_pb2.UPLOAD_STATE_COMPLETE


async def test_expired_upload_and_download_urls_fail(
    make_instance: MakeInstance, clock: ManualClock, people: list[str], http: httpx.AsyncClient
) -> None:
    quick = make_instance(
        62, clock, media_settings=MediaSettings(upload_url_ttl_s=2, download_url_ttl_s=2)
    )
    ann, ben, *_ = people
    late = await quick.media.create_upload(ann, declare(PNG))
    ok = await quick.media.create_upload(ann, declare(PNG + b"2"))
    assert await put(http, ok, PNG + b"2") == 200
    await quick.media.complete_upload(ann, ok.media_id)
    sent = await send_media(
        quick, ann, to_user=ben, media=common_pb2.MediaAttachment(media_id=ok.media_id)
    )
    url = await quick.media.download_url(
        ben,
        client_pb2.GetDownloadUrlFrame(
            media_id=ok.media_id, conversation_id=sent.message.conversation_id
        ),
    )
    assert (await http.get(url.url)).status_code == 200
    await asyncio.sleep(3.2)
    clock.advance(3200)
    assert await put(http, late, PNG) == 403
    assert (await http.get(url.url)).status_code == 403
    with pytest.raises(FailedPrecondition) as refused:
        await quick.media.complete_upload(ann, late.media_id)
    assert refused.value.reason == "UPLOAD_EXPIRED"


async def test_non_members_and_strangers_cannot_fetch_or_send_the_media(
    node: Instance, people: list[str], http: httpx.AsyncClient
) -> None:
    ann, ben, cat, _ = people
    media_id = await uploaded(node, http, ann)
    sent = await send_media(
        node, ann, to_user=ben, media=common_pb2.MediaAttachment(media_id=media_id)
    )
    conversation = sent.message.conversation_id
    for user, in_conversation in ((cat, conversation), (cat, ""), (ben, "")):
        if user == ben:
            break
        with pytest.raises(NotFound) as refused:
            await node.media.download_url(
                user,
                client_pb2.GetDownloadUrlFrame(media_id=media_id, conversation_id=in_conversation),
            )
        assert refused.value.reason == "MEDIA_NOT_FOUND"
    # Cat cannot send Ann's media anywhere: she cannot read any message carrying it.
    with pytest.raises(NotFound) as refused:
        await send_media(
            node, cat, to_user=ann, media=common_pb2.MediaAttachment(media_id=media_id)
        )
    assert refused.value.reason == "MEDIA_NOT_FOUND"
    # A conversation id of Ben's that does not carry it gives nothing either.
    other = await node.send(ben, to_user=cat, client_msg_id=unique("m"))
    with pytest.raises(NotFound):
        await node.media.download_url(
            ben,
            client_pb2.GetDownloadUrlFrame(
                media_id=media_id, conversation_id=other.message.conversation_id
            ),
        )


async def test_forwarding_reuses_the_media_without_copying(
    node: Instance, people: list[str], http: httpx.AsyncClient
) -> None:
    ann, ben, cat, _ = people
    media_id = await uploaded(node, http, ann)
    first = await send_media(
        node,
        ann,
        to_user=ben,
        media=common_pb2.MediaAttachment(media_id=media_id, width=10, height=10),
    )
    # Ben can read it, so he may forward it; Cat, who gets the forward, may fetch it.
    forwarded = await send_media(
        node, ben, to_user=cat, media=common_pb2.MediaAttachment(media_id=media_id)
    )
    assert forwarded.message.to_proto().media.media_id == media_id
    assert forwarded.message.conversation_id != first.message.conversation_id
    assert await download(node, http, cat, media_id, forwarded.message.conversation_id) == PNG


async def test_nobody_sends_an_incomplete_upload_or_another_users(
    node: Instance, people: list[str], http: httpx.AsyncClient
) -> None:
    ann, ben, cat, _ = people
    pending = await node.media.create_upload(ann, declare(PNG))
    with pytest.raises(FailedPrecondition) as refused:
        await send_media(
            node, ann, to_user=ben, media=common_pb2.MediaAttachment(media_id=pending.media_id)
        )
    assert refused.value.reason == "UPLOAD_NOT_COMPLETE"
    assert await put(http, pending, PNG) == 200
    # Completed and never sent: still only Ann's. Ben may not complete, send or fetch it.
    with pytest.raises(NotFound):
        await node.media.complete_upload(ben, pending.media_id)
    await node.media.complete_upload(ann, pending.media_id)
    with pytest.raises(NotFound):
        await send_media(
            node, ben, to_user=cat, media=common_pb2.MediaAttachment(media_id=pending.media_id)
        )
    with pytest.raises(NotFound):
        await node.media.download_url(
            ben, client_pb2.GetDownloadUrlFrame(media_id=pending.media_id)
        )
    # Ann herself may look at her own upload before sending it.
    own = await node.media.download_url(
        ann, client_pb2.GetDownloadUrlFrame(media_id=pending.media_id)
    )
    assert (await http.get(own.url)).content == PNG
    # Nothing was stored by the refused sends.
    page = await node.conversations.page(ben, page_token="", page_size=10)
    assert page.conversations == ()


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (
            client_pb2.CreateUploadFrame(
                kind=common_pb2.MESSAGE_KIND_TEXT,
                content_type="image/png",
                size_bytes=10,
                sha256=b"x" * 32,
            ),
            "UNKNOWN_MEDIA_KIND",
        ),
        (
            client_pb2.CreateUploadFrame(
                kind=99, content_type="image/png", size_bytes=10, sha256=b"x" * 32
            ),
            "UNKNOWN_MEDIA_KIND",
        ),
        (
            client_pb2.CreateUploadFrame(
                kind=IMAGE, content_type="application/x-msdownload", size_bytes=10, sha256=b"x" * 32
            ),
            "CONTENT_TYPE_NOT_ALLOWED",
        ),
        (
            client_pb2.CreateUploadFrame(
                kind=IMAGE, content_type="video/mp4", size_bytes=10, sha256=b"x" * 32
            ),
            "CONTENT_TYPE_NOT_ALLOWED",
        ),
        (
            client_pb2.CreateUploadFrame(
                kind=IMAGE, content_type="image/png", size_bytes=-5, sha256=b"x" * 32
            ),
            "INVALID_SIZE",
        ),
        (
            client_pb2.CreateUploadFrame(
                kind=IMAGE, content_type="image/png", size_bytes=0, sha256=b"x" * 32
            ),
            "INVALID_SIZE",
        ),
        (
            client_pb2.CreateUploadFrame(
                kind=IMAGE, content_type="image/png", size_bytes=16 * MiB + 1, sha256=b"x" * 32
            ),
            "MEDIA_TOO_LARGE",
        ),
        (
            client_pb2.CreateUploadFrame(
                kind=VIDEO, content_type="video/mp4", size_bytes=100 * MiB + 1, sha256=b"x" * 32
            ),
            "MEDIA_TOO_LARGE",
        ),
        (
            client_pb2.CreateUploadFrame(
                kind=IMAGE, content_type="image/png", size_bytes=10, sha256=b"short"
            ),
            "INVALID_SHA256",
        ),
    ],
)
async def test_bad_upload_declarations_are_refused_and_nothing_is_recorded(
    node: Instance,
    people: list[str],
    pg_pool: asyncpg.Pool,
    frame: client_pb2.CreateUploadFrame,
    reason: str,
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await node.media.create_upload(people[0], frame)
    assert refused.value.reason == reason
    assert (
        await pg_pool.fetchval(
            "SELECT count(*) FROM media_uploads WHERE owner_user_id = $1", people[0]
        )
        == 0
    )
    assert (
        await pg_pool.fetchval("SELECT count(*) FROM media_quota WHERE user_id = $1", people[0])
        == 0
    )


async def test_bad_media_in_a_send_is_refused_and_nothing_is_stored(
    node: Instance, people: list[str], http: httpx.AsyncClient
) -> None:
    ann, ben, *_ = people
    media_id = await uploaded(node, http, ann)
    cases: list[tuple[int, common_pb2.MediaAttachment, str]] = [
        (VIDEO, common_pb2.MediaAttachment(media_id=media_id), "MEDIA_KIND_MISMATCH"),
        (IMAGE, common_pb2.MediaAttachment(media_id=media_id, size_bytes=1), "MEDIA_MISMATCH"),
        (IMAGE, common_pb2.MediaAttachment(media_id=media_id, sha256=b"y" * 32), "MEDIA_MISMATCH"),
        (
            IMAGE,
            common_pb2.MediaAttachment(media_id=media_id, content_type="image/gif"),
            "MEDIA_MISMATCH",
        ),
        (
            IMAGE,
            common_pb2.MediaAttachment(media_id=media_id, thumbnail=b"t" * 5000),
            "THUMBNAIL_TOO_LARGE",
        ),
        (
            IMAGE,
            common_pb2.MediaAttachment(media_id=media_id, blurhash="not a blurhash!"),
            "INVALID_BLURHASH",
        ),
        (IMAGE, common_pb2.MediaAttachment(media_id=media_id, duration_ms=5), "INVALID_DURATION"),
        (
            IMAGE,
            common_pb2.MediaAttachment(media_id=media_id, file_name="a.png"),
            "INVALID_FILE_NAME",
        ),
        (IMAGE, common_pb2.MediaAttachment(media_id="no such id"), "MEDIA_NOT_FOUND"),
        (IMAGE, common_pb2.MediaAttachment(media_id="x" * 500), "MEDIA_NOT_FOUND"),
        (IMAGE, common_pb2.MediaAttachment(), "MISSING_MEDIA"),
        (IMAGE, common_pb2.MediaAttachment(width=3), "MISSING_MEDIA_ID"),
    ]
    for kind, media, reason in cases:
        with pytest.raises(ChatmeshError) as refused:
            await send_media(node, ann, to_user=ben, kind=kind, media=media)
        assert refused.value.reason == reason, (media, refused.value.reason)
    # A media kind without media, and a text with media.
    with pytest.raises(InvalidArgument) as refused:
        await node.sender.send(SendCommand(ann, "phone", unique("m"), None, ben, IMAGE, b""))
    assert refused.value.reason == "MISSING_MEDIA"
    with pytest.raises(InvalidArgument) as refused:
        await send_media(
            node,
            ann,
            to_user=ben,
            kind=common_pb2.MESSAGE_KIND_TEXT,
            media=common_pb2.MediaAttachment(media_id=media_id),
        )
    assert refused.value.reason == "MEDIA_NOT_ALLOWED"
    page = await node.conversations.page(ben, page_token="", page_size=10)
    assert page.conversations == ()


async def test_a_retried_media_send_is_one_message_and_another_media_under_its_key_is_refused(
    node: Instance, people: list[str], http: httpx.AsyncClient
) -> None:
    ann, ben, *_ = people
    first, second = await uploaded(node, http, ann), await uploaded(node, http, ann, PNG + b"x")
    key = unique("m")
    media = common_pb2.MediaAttachment(media_id=first, width=3, height=4)
    sent = await send_media(node, ann, to_user=ben, media=media, client_msg_id=key)
    again = await send_media(node, ann, to_user=ben, media=media, client_msg_id=key)
    assert again.duplicate and again.message.message_id == sent.message.message_id
    with pytest.raises(InvalidArgument) as refused:
        await send_media(
            node,
            ann,
            to_user=ben,
            media=common_pb2.MediaAttachment(media_id=second),
            client_msg_id=key,
        )
    assert refused.value.reason == "CLIENT_MSG_ID_REUSED"


async def test_the_daily_quota_counts_uploads_and_bytes(
    make_instance: MakeInstance, clock: ManualClock, people: list[str], pg_pool: asyncpg.Pool
) -> None:
    small = make_instance(
        63, clock, media_settings=MediaSettings(daily_uploads=3, daily_upload_bytes=10 * MiB)
    )
    ann, ben, *_ = people
    # Concurrent uploads are counted one after another: exactly three pass.
    results = await asyncio.gather(
        *(small.media.create_upload(ann, declare(PNG + bytes([i]))) for i in range(6)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, ResourceExhausted)]
    assert len(refused) == 3 and all(r.reason == "UPLOAD_QUOTA_EXCEEDED" for r in refused)
    assert (
        await pg_pool.fetchval("SELECT count(*) FROM media_uploads WHERE owner_user_id = $1", ann)
        == 3
    )
    # Bytes too: Ben's first fits, a second that would pass 10 MiB does not.
    await small.media.create_upload(
        ben,
        client_pb2.CreateUploadFrame(
            kind=IMAGE, content_type="image/png", size_bytes=6 * MiB, sha256=b"s" * 32
        ),
    )
    with pytest.raises(ResourceExhausted):
        await small.media.create_upload(
            ben,
            client_pb2.CreateUploadFrame(
                kind=IMAGE, content_type="image/png", size_bytes=5 * MiB, sha256=b"s" * 32
            ),
        )
    # The next day starts afresh.
    clock.advance(24 * 3600 * 1000)
    await small.media.create_upload(
        ben,
        client_pb2.CreateUploadFrame(
            kind=IMAGE, content_type="image/png", size_bytes=5 * MiB, sha256=b"s" * 32
        ),
    )


async def test_the_sweep_deletes_abandoned_uploads_and_spares_sent_ones(
    node: Instance,
    people: list[str],
    http: httpx.AsyncClient,
    pg_pool: asyncpg.Pool,
    media_objects: S3ObjectStore,
    clock: ManualClock,
) -> None:
    ann, ben, *_ = people
    abandoned = await node.media.create_upload(ann, declare(PNG + b"a"))
    assert await put(http, abandoned, PNG + b"a") == 200  # uploaded, never completed
    never_put = await node.media.create_upload(ann, declare(PNG + b"b"))
    unsent = await uploaded(node, http, ann, PNG + b"c")
    sent_id = await uploaded(node, http, ann, PNG + b"d")
    sent = await send_media(
        node, ann, to_user=ben, media=common_pb2.MediaAttachment(media_id=sent_id)
    )
    settings = MediaSettings()
    # Before expiry and grace nothing goes.
    await node.service.media_sweeper.sweep_once()
    assert await media_objects.head(object_key(abandoned.media_id)) is not None
    clock.advance((settings.upload_url_ttl_s + settings.sweep_grace_s) * 1000 + 1000)
    await node.service.media_sweeper.sweep_once()
    assert await media_objects.head(object_key(abandoned.media_id)) is None
    gone = await pg_pool.fetch(
        "SELECT media_id FROM media_uploads WHERE media_id = ANY($1::text[])",
        [abandoned.media_id, never_put.media_id],
    )
    assert gone == []
    assert await media_objects.head(object_key(unsent)) is not None
    # A completed upload nobody sent goes after its time; a sent one stays.
    clock.advance(settings.unreferenced_ttl_s * 1000)
    await node.service.media_sweeper.sweep_once()
    assert await media_objects.head(object_key(unsent)) is None
    assert await media_objects.head(object_key(sent_id)) is not None
    assert await download(node, http, ben, sent_id, sent.message.conversation_id) == PNG + b"d"


async def test_an_unreachable_object_store_fails_media_as_retryable_and_nothing_else(
    make_instance: MakeInstance, clock: ManualClock, people: list[str], stores: Stores
) -> None:
    ann, ben, *_ = people
    nowhere = dataclasses.replace(
        stores.object_store, endpoint="http://127.0.0.1:9", public_endpoint="http://127.0.0.1:9"
    )
    async with s3_object_store(nowhere) as objects:
        cut_off = make_instance(64, clock, objects=objects)
        # Signing needs no store: the URL is handed out, and fails only when used.
        upload = await cut_off.media.create_upload(ann, declare(PNG))
        assert upload.upload_url.startswith("http://127.0.0.1:9/")
        with pytest.raises(Unavailable) as refused:
            await cut_off.media.complete_upload(ann, upload.media_id)
        assert refused.value.reason == "OBJECT_STORE_UNAVAILABLE"
        # Text messages do not depend on it.
        sent = await cut_off.send(ann, to_user=ben, client_msg_id=unique("m"))
        assert sent.message.message_id


async def test_group_members_fetch_what_their_window_holds(
    node: Instance, people: list[str], http: httpx.AsyncClient, clock: ManualClock
) -> None:
    ann, ben, cat, dan = people
    created = await node.groups.create(
        ann, "phone", client_group_id=unique("g"), title="Trip", member_ids=[ben, cat]
    )
    group = created.group.conversation_id
    media_id = await uploaded(node, http, ann)
    await send_media(
        node, ann, conversation=group, media=common_pb2.MediaAttachment(media_id=media_id)
    )
    assert await download(node, http, cat, media_id, group) == PNG
    # Dan joins later: the photo was sent before his window opened.
    clock.advance(10)
    await node.groups.add(ann, "phone", group, [dan])
    with pytest.raises(NotFound):
        await download(node, http, dan, media_id, group)
    # Sent again (a forward into the same group), it is his to see.
    clock.advance(10)
    await send_media(
        node, ben, conversation=group, media=common_pb2.MediaAttachment(media_id=media_id)
    )
    assert await download(node, http, dan, media_id, group) == PNG
    # A removed member may no longer fetch it.
    clock.advance(10)
    await node.groups.remove(ann, "phone", group, cat)
    with pytest.raises(NotFound):
        await download(node, http, cat, media_id, group)
