"""S3 clients for the object store (``chatmesh.object_store``).

Path-style addressing: SeaweedFS, and most stores that are not AWS itself,
serve no per-bucket host names. Short timeouts and a single retry: msgsvc
talks to the store while a client waits, and a store that does not answer
within seconds will not answer a tenth attempt either.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from chatmesh.object_store import ObjectStoreSettings

if TYPE_CHECKING:  # the stubs are a development dependency, absent from the image
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import ObjectIdentifierTypeDef

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 5.0
# Including the first attempt.
MAX_ATTEMPTS = 2
# DeleteObjects takes at most this many keys per request.
DELETE_BATCH = 1000
# Browsers cache a preflight's answer this long: pages PUT once per upload.
CORS_MAX_AGE_S = 600
# A bound on the origins a shared development bucket accumulates (each local
# cluster adds four); S3 allows 100 rules of any size, this keeps it readable.
MAX_CORS_ORIGINS = 400

_CONFIG = AioConfig(
    signature_version="s3v4",
    s3={"addressing_style": "path"},
    connect_timeout=CONNECT_TIMEOUT_S,
    read_timeout=READ_TIMEOUT_S,
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    # Checksums only where S3 requires them: an upload's checksum is the
    # client's, bound into its pre-signed URL, never one computed here.
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)


def _client(settings: ObjectStoreSettings, endpoint: str) -> AbstractAsyncContextManager[S3Client]:
    return get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=settings.region,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        config=_CONFIG,
    )


def object_store_client(settings: ObjectStoreSettings) -> AbstractAsyncContextManager[S3Client]:
    """A client of ``settings.endpoint``, the address this process reaches the store at."""
    return _client(settings, settings.endpoint)


def public_object_store_client(
    settings: ObjectStoreSettings,
) -> AbstractAsyncContextManager[S3Client]:
    """A client of ``settings.public_endpoint``, for signing URLs that clients
    use: a signature covers the host, so it must be the one they dial."""
    return _client(settings, settings.public_endpoint)


async def ensure_bucket(client: S3Client, bucket: str) -> None:
    """Creates ``bucket`` unless it exists already."""
    try:
        await client.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if _status(exc) != 404:
            raise
    try:
        await client.create_bucket(Bucket=bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass  # created meanwhile by another process with the same credentials


async def allow_browser_origins(client: S3Client, bucket: str, origins: list[str]) -> None:
    """Lets pages served from ``origins`` GET, PUT and HEAD ``bucket``'s
    objects with pre-signed URLs (CORS), keeping origins allowed already.

    Several local clusters share one bucket, each on its own edge ports: a
    configuration holding only the newest cluster's origins would break the
    pages of the others.
    """
    allowed = set(origins)
    try:
        current = await client.get_bucket_cors(Bucket=bucket)
        for rule in current.get("CORSRules", []):
            allowed.update(rule.get("AllowedOrigins", []))
    except ClientError as exc:
        if _status(exc) != 404:  # NoSuchCORSConfiguration: none yet
            raise
    await client.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": sorted(allowed)[-MAX_CORS_ORIGINS:],
                    "AllowedMethods": ["GET", "PUT", "HEAD"],
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["ETag"],
                    "MaxAgeSeconds": CORS_MAX_AGE_S,
                }
            ]
        },
    )


async def delete_bucket(client: S3Client, bucket: str) -> None:
    """Deletes ``bucket`` with everything in it; a missing bucket is no error.

    Unversioned buckets only (none of ours is versioned): a versioned bucket
    keeps its old versions and delete markers, and refuses to be deleted.
    """
    try:
        await _abort_uploads(client, bucket)
        await _delete_objects(client, bucket)
        await client.delete_bucket(Bucket=bucket)
    except client.exceptions.NoSuchBucket:
        pass


async def _abort_uploads(client: S3Client, bucket: str) -> None:
    # Unfinished multipart uploads keep their parts, and SeaweedFS counts
    # them as content of the bucket.
    async for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            await client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )


async def _delete_objects(client: S3Client, bucket: str) -> None:
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": DELETE_BATCH}
    )
    async for page in pages:
        keys: list[ObjectIdentifierTypeDef] = [
            {"Key": item["Key"]} for item in page.get("Contents", [])
        ]
        if not keys:
            continue
        deleted = await client.delete_objects(
            Bucket=bucket, Delete={"Objects": keys, "Quiet": True}
        )
        if deleted.get("Errors"):
            raise RuntimeError(f"{bucket}: objects not deleted: {deleted['Errors'][:3]}")


def _status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None
