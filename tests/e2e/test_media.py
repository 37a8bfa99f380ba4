"""Media end to end, as a client does it: frames through Envoy and a
gateway, bytes straight to the object store with plain HTTP, through the
client library. The chat servers never see the bytes."""

from __future__ import annotations

import hashlib
import os

import asyncpg
import grpc
import httpx
import pytest

from chatmesh.client import Connection, MediaError, download_media, upload_media
from chatmesh.devcluster import LocalCluster
from chatmesh.v1 import (
    client_pb2,
    common_pb2,
    media_service_pb2,
    media_service_pb2_grpc,
)
from tests.conftest import add_users, unique

VOICE = common_pb2.MESSAGE_KIND_VOICE
NOTE = os.urandom(300_000)  # a voice note's worth of opaque bytes


@pytest.fixture
async def http() -> httpx.AsyncClient:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client  # type: ignore[misc]


async def test_a_voice_note_goes_up_to_the_store_and_down_to_the_recipient_byte_for_byte(
    open_client,
    pg_pool: asyncpg.Pool,
    http: httpx.AsyncClient,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    alice_ws: Connection = await open_client(alice)
    bob_ws: Connection = await open_client(bob)

    media = await upload_media(alice_ws.request, http, NOTE, kind=VOICE, content_type="audio/ogg")
    assert media.size_bytes == len(NOTE) and media.sha256 == hashlib.sha256(NOTE).digest()
    media.duration_ms = 4200
    send = client_pb2.SendFrame(client_msg_id=unique("m"), to_user_id=bob, kind=VOICE, media=media)
    ack = (await alice_ws.request(client_pb2.ClientFrame(send=send))).ack
    assert ack.message_id

    delivered = (await bob_ws.recv_kind("deliver")).deliver.message
    assert delivered.message_id == ack.message_id
    assert delivered.kind == VOICE
    assert delivered.media.duration_ms == 4200
    assert delivered.media.content_type == "audio/ogg"
    assert await download_media(bob_ws.request, http, delivered) == NOTE


async def test_bad_media_requests_get_typed_errors_and_the_connection_stays_usable(
    open_client,
    pg_pool: asyncpg.Pool,
    http: httpx.AsyncClient,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob, eve = unique("alice"), unique("bob"), unique("eve")
    await add_users(pg_pool, alice, bob, eve)
    alice_ws: Connection = await open_client(alice)
    eve_ws: Connection = await open_client(eve)
    media = await upload_media(alice_ws.request, http, NOTE, kind=VOICE, content_type="audio/ogg")
    send = client_pb2.SendFrame(client_msg_id=unique("m"), to_user_id=bob, kind=VOICE, media=media)
    conversation = (await alice_ws.request(client_pb2.ClientFrame(send=send))).ack.conversation_id

    refusals = [
        (
            client_pb2.ClientFrame(
                create_upload=client_pb2.CreateUploadFrame(
                    kind=42,
                    content_type="audio/ogg",
                    size_bytes=10,
                    sha256=b"s" * 32,  # type: ignore[arg-type]
                )
            ),
            "UNKNOWN_MEDIA_KIND",
        ),
        (
            client_pb2.ClientFrame(
                create_upload=client_pb2.CreateUploadFrame(
                    kind=VOICE, content_type="audio/ogg", size_bytes=-1, sha256=b"s" * 32
                )
            ),
            "INVALID_SIZE",
        ),
        # Eve is in no conversation carrying it: not hers to fetch, send or complete.
        (
            client_pb2.ClientFrame(
                get_download_url=client_pb2.GetDownloadUrlFrame(
                    media_id=media.media_id, conversation_id=conversation
                )
            ),
            "MEDIA_NOT_FOUND",
        ),
        (
            client_pb2.ClientFrame(
                send=client_pb2.SendFrame(
                    client_msg_id=unique("m"), to_user_id=alice, kind=VOICE, media=media
                )
            ),
            "MEDIA_NOT_FOUND",
        ),
        (
            client_pb2.ClientFrame(
                complete_upload=client_pb2.CompleteUploadFrame(media_id=media.media_id)
            ),
            "MEDIA_NOT_FOUND",
        ),
    ]
    for frame, reason in refusals:
        answer = await eve_ws.request(frame)
        assert answer.WhichOneof("kind") == "error", answer
        assert answer.error.reason == reason
    with pytest.raises(MediaError) as refused:
        await download_media(
            eve_ws.request, http, common_pb2.Message(conversation_id=conversation, media=media)
        )
    assert refused.value.reason == "MEDIA_NOT_FOUND"
    await eve_ws.send(client_pb2.ClientFrame(ping=client_pb2.PingFrame(client_time_ms=1)))
    assert (await eve_ws.recv_kind("pong")).pong.client_time_ms == 1


async def test_internal_teams_upload_through_the_grpc_media_service(
    cluster: LocalCluster, pg_pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    carol = unique("carol")
    await add_users(pg_pool, carol)
    data = b"%PDF-1.7 minimal" + os.urandom(1000)
    async with cluster.channel("msgsvc") as channel:
        media = media_service_pb2_grpc.MediaServiceStub(channel)
        created = await media.CreateUpload(
            media_service_pb2.CreateUploadRequest(
                user_id=carol,
                upload=client_pb2.CreateUploadFrame(
                    kind=common_pb2.MESSAGE_KIND_DOCUMENT,
                    content_type="application/pdf",
                    size_bytes=len(data),
                    sha256=hashlib.sha256(data).digest(),
                ),
            )
        )
        upload = created.upload
        put = await http.put(upload.upload_url, content=data, headers=dict(upload.upload_headers))
        assert put.status_code == 200
        done = await media.CompleteUpload(
            media_service_pb2.CompleteUploadRequest(user_id=carol, media_id=upload.media_id)
        )
        assert done.upload.state == client_pb2.UPLOAD_STATE_COMPLETE
        own = await media.GetDownloadUrl(
            media_service_pb2.GetDownloadUrlRequest(
                user_id=carol, download=client_pb2.GetDownloadUrlFrame(media_id=upload.media_id)
            )
        )
        assert (await http.get(own.download.url)).content == data
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await media.CreateUpload(
                media_service_pb2.CreateUploadRequest(
                    user_id=carol,
                    upload=client_pb2.CreateUploadFrame(
                        kind=common_pb2.MESSAGE_KIND_DOCUMENT,
                        content_type="application/x-sh",
                        size_bytes=5,
                        sha256=b"s" * 32,
                    ),
                )
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
