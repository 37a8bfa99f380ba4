"""The object store as media needs it: signing URLs, checking and deleting
objects. Signing happens locally (no request to the store); the checks and
deletes are requests, bounded by the client's timeouts.

An upload URL's signature covers the Content-Type, Content-Length and
x-amz-checksum-sha256 headers, so the store refuses a PUT of anything but
the declared bytes: other headers break the signature, and a body that does
not match the checksum is rejected by the store itself.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chatmesh.errors import Unavailable
from chatmesh.object_store import ObjectStoreSettings
from chatmesh.s3_client import DELETE_BATCH, object_store_client, public_object_store_client

if TYPE_CHECKING:  # the stubs are a development dependency, absent from the image
    from types_aiobotocore_s3 import S3Client


@dataclass(frozen=True, slots=True)
class SignedUpload:
    url: str
    headers: dict[str, str]  # exactly as the PUT must carry them


@dataclass(frozen=True, slots=True)
class StoredObject:
    size_bytes: int
    content_type: str
    sha256: bytes  # b"" when the store keeps no checksum


class ObjectStore(Protocol):
    async def sign_upload(
        self, key: str, *, content_type: str, size_bytes: int, sha256: bytes, ttl_s: int
    ) -> SignedUpload: ...

    async def sign_download(self, key: str, *, ttl_s: int) -> str: ...

    async def head(self, key: str) -> StoredObject | None:
        """The object's facts, or None if there is none."""
        ...

    async def delete(self, keys: list[str]) -> None: ...


def _unavailable(exc: Exception) -> Unavailable:
    return Unavailable("OBJECT_STORE_UNAVAILABLE", f"the object store did not answer: {exc}")


@asynccontextmanager
async def s3_object_store(settings: ObjectStoreSettings) -> AsyncIterator[S3ObjectStore]:
    """Opens no connection: a store that is down costs nothing until used."""
    async with (
        object_store_client(settings) as client,
        public_object_store_client(settings) as signer,
    ):
        yield S3ObjectStore(client, signer, settings.bucket)


class S3ObjectStore:
    """``client`` talks to the store; ``signer`` signs URLs for the address
    clients reach it at (its public endpoint), which may differ."""

    def __init__(self, client: S3Client, signer: S3Client, bucket: str) -> None:
        self._client = client
        self._signer = signer
        self._bucket = bucket

    async def sign_upload(
        self, key: str, *, content_type: str, size_bytes: int, sha256: bytes, ttl_s: int
    ) -> SignedUpload:
        checksum = base64.b64encode(sha256).decode()
        url = await self._signer.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self._bucket,
                "Key": key,
                "ContentType": content_type,
                "ContentLength": size_bytes,
                "ChecksumSHA256": checksum,
            },
            ExpiresIn=ttl_s,
            HttpMethod="PUT",
        )
        return SignedUpload(
            url,
            {
                "Content-Type": content_type,
                "Content-Length": str(size_bytes),
                "x-amz-checksum-sha256": checksum,
            },
        )

    async def sign_download(self, key: str, *, ttl_s: int) -> str:
        return await self._signer.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=ttl_s
        )

    async def head(self, key: str) -> StoredObject | None:
        try:
            found = await self._client.head_object(
                Bucket=self._bucket, Key=key, ChecksumMode="ENABLED"
            )
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                return None
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        checksum = found.get("ChecksumSHA256", "")
        return StoredObject(
            size_bytes=found["ContentLength"],
            content_type=found.get("ContentType", ""),
            sha256=base64.b64decode(checksum) if checksum else b"",
        )

    async def delete(self, keys: list[str]) -> None:
        if not keys:
            return
        try:
            for start in range(0, len(keys), DELETE_BATCH):
                answer = await self._client.delete_objects(
                    Bucket=self._bucket,
                    Delete={"Objects": [{"Key": k} for k in keys[start : start + DELETE_BATCH]]},
                )
                if answer.get("Errors"):
                    raise Unavailable(
                        "OBJECT_STORE_UNAVAILABLE", f"deletes failed: {answer['Errors'][:3]}"
                    )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
