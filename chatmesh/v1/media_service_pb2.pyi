from chatmesh.v1 import client_pb2 as _client_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateUploadRequest(_message.Message):
    __slots__ = ("user_id", "upload")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    upload: _client_pb2.CreateUploadFrame
    def __init__(self, user_id: _Optional[str] = ..., upload: _Optional[_Union[_client_pb2.CreateUploadFrame, _Mapping]] = ...) -> None: ...

class CreateUploadResponse(_message.Message):
    __slots__ = ("upload",)
    UPLOAD_FIELD_NUMBER: _ClassVar[int]
    upload: _client_pb2.UploadFrame
    def __init__(self, upload: _Optional[_Union[_client_pb2.UploadFrame, _Mapping]] = ...) -> None: ...

class CompleteUploadRequest(_message.Message):
    __slots__ = ("user_id", "media_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    media_id: str
    def __init__(self, user_id: _Optional[str] = ..., media_id: _Optional[str] = ...) -> None: ...

class CompleteUploadResponse(_message.Message):
    __slots__ = ("upload",)
    UPLOAD_FIELD_NUMBER: _ClassVar[int]
    upload: _client_pb2.UploadFrame
    def __init__(self, upload: _Optional[_Union[_client_pb2.UploadFrame, _Mapping]] = ...) -> None: ...

class GetDownloadUrlRequest(_message.Message):
    __slots__ = ("user_id", "download")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    download: _client_pb2.GetDownloadUrlFrame
    def __init__(self, user_id: _Optional[str] = ..., download: _Optional[_Union[_client_pb2.GetDownloadUrlFrame, _Mapping]] = ...) -> None: ...

class GetDownloadUrlResponse(_message.Message):
    __slots__ = ("download",)
    DOWNLOAD_FIELD_NUMBER: _ClassVar[int]
    download: _client_pb2.DownloadUrlFrame
    def __init__(self, download: _Optional[_Union[_client_pb2.DownloadUrlFrame, _Mapping]] = ...) -> None: ...
