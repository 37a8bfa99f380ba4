"""gRPC edge of media: the same requests and rules as the client frames."""

from __future__ import annotations

import grpc

from chatmesh.errors import InvalidArgument
from chatmesh.failures import abort_with
from chatmesh.v1 import media_service_pb2, media_service_pb2_grpc
from msgsvc.media.service import MediaService


class MediaServicer(media_service_pb2_grpc.MediaServiceServicer):
    def __init__(self, media: MediaService) -> None:
        self._media = media

    async def CreateUpload(
        self, request: media_service_pb2.CreateUploadRequest, context: grpc.aio.ServicerContext
    ) -> media_service_pb2.CreateUploadResponse:
        try:
            _require_user(request.user_id)
            upload = await self._media.create_upload(request.user_id, request.upload)
        except Exception as exc:
            await abort_with(context, exc)
        return media_service_pb2.CreateUploadResponse(upload=upload)

    async def CompleteUpload(
        self, request: media_service_pb2.CompleteUploadRequest, context: grpc.aio.ServicerContext
    ) -> media_service_pb2.CompleteUploadResponse:
        try:
            _require_user(request.user_id)
            upload = await self._media.complete_upload(request.user_id, request.media_id)
        except Exception as exc:
            await abort_with(context, exc)
        return media_service_pb2.CompleteUploadResponse(upload=upload)

    async def GetDownloadUrl(
        self, request: media_service_pb2.GetDownloadUrlRequest, context: grpc.aio.ServicerContext
    ) -> media_service_pb2.GetDownloadUrlResponse:
        try:
            _require_user(request.user_id)
            download = await self._media.download_url(request.user_id, request.download)
        except Exception as exc:
            await abort_with(context, exc)
        return media_service_pb2.GetDownloadUrlResponse(download=download)


def _require_user(user_id: str) -> None:
    if not user_id:
        raise InvalidArgument("MISSING_USER", "user_id is required")
