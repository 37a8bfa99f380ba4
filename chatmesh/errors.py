"""One error vocabulary for the whole system.

Domain code raises a ``ChatmeshError`` subclass with a machine-readable
reason. The edges translate it, in one place each: to a gRPC status carrying a
``google.rpc.ErrorInfo`` (``grpc_status``), and to a WebSocket ``error`` frame
(``error_frame``).
"""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from chatmesh.v1 import client_pb2, common_pb2

ERROR_DOMAIN = "chatmesh.v1"


class ChatmeshError(Exception):
    code: common_pb2.ErrorCode = common_pb2.ERROR_CODE_INTERNAL
    grpc_code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message or reason


class InvalidArgument(ChatmeshError):
    code = common_pb2.ERROR_CODE_INVALID_ARGUMENT
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ChatmeshError):
    code = common_pb2.ERROR_CODE_NOT_FOUND
    grpc_code = grpc.StatusCode.NOT_FOUND


class PermissionDenied(ChatmeshError):
    code = common_pb2.ERROR_CODE_PERMISSION_DENIED
    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(ChatmeshError):
    code = common_pb2.ERROR_CODE_RESOURCE_EXHAUSTED
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(ChatmeshError):
    code = common_pb2.ERROR_CODE_UNAVAILABLE
    grpc_code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(ChatmeshError):
    code = common_pb2.ERROR_CODE_UNAUTHENTICATED
    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class FailedPrecondition(ChatmeshError):
    code = common_pb2.ERROR_CODE_FAILED_PRECONDITION
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


class AlreadyExists(ChatmeshError):
    code = common_pb2.ERROR_CODE_ALREADY_EXISTS
    grpc_code = grpc.StatusCode.ALREADY_EXISTS


def grpc_status(error: ChatmeshError) -> grpc.Status:
    """The rich gRPC status for an error: code, message and ErrorInfo{reason}."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN)
    status = status_pb2.Status(code=error.grpc_code.value[0], message=error.message)
    status.details.add().Pack(info)
    return rpc_status.to_status(status)


def reason_of(rpc_error: grpc.aio.AioRpcError | grpc.RpcError) -> str | None:
    """The ErrorInfo reason carried by a failed call, if any."""
    status = rpc_status.from_call(rpc_error)  # type: ignore[arg-type]
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return None


_BY_GRPC_CODE: dict[grpc.StatusCode, type[ChatmeshError]] = {
    cls.grpc_code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        PermissionDenied,
        ResourceExhausted,
        Unavailable,
        Unauthenticated,
        FailedPrecondition,
        AlreadyExists,
    )
}


def from_rpc_error(rpc_error: grpc.aio.AioRpcError) -> ChatmeshError:
    """The error a failed call to another service stands for, to pass on to
    a client: its code and reason; a call that never reached the service
    (or timed out) is UNAVAILABLE, safe to retry."""
    code = rpc_error.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Unavailable("UPSTREAM_TIMEOUT", "a service did not answer in time; retry")
    reason = reason_of(rpc_error)
    cls = _BY_GRPC_CODE.get(code)
    if cls is None or reason is None:
        if code == grpc.StatusCode.UNAVAILABLE:
            return Unavailable("UPSTREAM_UNAVAILABLE", "a service is unavailable; retry")
        return ChatmeshError("INTERNAL", "internal error")
    return cls(reason, rpc_error.details() or reason)


def error_frame(
    error: ChatmeshError, *, request_id: str = "", client_msg_id: str = ""
) -> client_pb2.ServerFrame:
    return client_pb2.ServerFrame(
        error=client_pb2.ErrorFrame(
            code=error.code,
            reason=error.reason,
            message=error.message,
            request_id=request_id,
            client_msg_id=client_msg_id,
        )
    )
