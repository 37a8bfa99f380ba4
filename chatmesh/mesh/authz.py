"""Refuses every call whose caller the policy does not allow.

The caller is the SPIFFE id of the client certificate the TLS handshake
verified against our CA; nothing in the request can change it. Calls an
internal team makes on a user's behalf are written to the ``chatmesh.audit``
log: who, which method, for which user.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
from google.protobuf.message import Message

from chatmesh.errors import ChatmeshError, PermissionDenied, Unauthenticated, grpc_status
from chatmesh.grpc_handlers import with_behaviour
from chatmesh.mesh.pki import Principal
from chatmesh.mesh.policy import Rule

log = logging.getLogger(__name__)
audit_log = logging.getLogger("chatmesh.audit")

_PEER_SPIFFE_ID = "peer_spiffe_id"


def caller_of(context: grpc.aio.ServicerContext) -> Principal | None:
    """The verified identity of the peer, or None if it presented none of ours."""
    values = context.auth_context().get(_PEER_SPIFFE_ID) or []
    if len(values) != 1:
        return None
    return Principal.from_uri(values[0].decode(errors="replace"))


def acting_client(context: grpc.aio.ServicerContext) -> str:
    """The internal client (``client/<name>``) making this call, or "" when
    the caller is one of our services. What a handler records as the party
    acting on a user's behalf."""
    caller = caller_of(context)
    return str(caller) if caller is not None and caller.kind == Principal.CLIENT else ""


def _acted_for(request: Message) -> dict[str, str]:
    """The user ids a request names, for the audit record."""
    return {
        field.name: value
        for field, value in request.ListFields()
        if field.name.endswith("user_id") and isinstance(value, str)
    }


class AuthorizationInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # untyped base
    def __init__(self, policy: Mapping[str, Rule]) -> None:
        self._policy = policy

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        rule = self._policy.get(method)

        async def admit(context: grpc.aio.ServicerContext) -> Principal:
            caller = caller_of(context)
            error: ChatmeshError | None = None
            if caller is None:
                error = Unauthenticated("NO_MESH_IDENTITY", "no chatmesh mesh identity")
            elif rule is None or not rule.allows(caller):
                error = PermissionDenied("CALLER_NOT_ALLOWED", f"{caller} may not call {method}")
            if error is not None:
                log.warning(
                    "mesh call refused",
                    extra={
                        "fields": {"method": method, "caller": str(caller), "peer": context.peer()}
                    },
                )
                await context.abort_with_status(grpc_status(error))
            assert caller is not None
            return caller

        def record(caller: Principal, request: Message) -> None:
            if rule is not None and rule.acts_for_user and caller.kind == Principal.CLIENT:
                audit_log.info(
                    "acting for user",
                    extra={
                        "fields": {"caller": str(caller), "method": method, **_acted_for(request)}
                    },
                )

        if handler.unary_unary is not None:
            unary_unary = handler.unary_unary

            async def guarded_unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                record(await admit(context), request)
                return await unary_unary(request, context)

            return with_behaviour(handler, guarded_unary_unary)
        if handler.unary_stream is not None:
            unary_stream = handler.unary_stream

            async def guarded_unary_stream(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                record(await admit(context), request)
                async for response in unary_stream(request, context):
                    yield response

            return with_behaviour(handler, guarded_unary_stream)
        if handler.stream_stream is not None:
            stream_stream = handler.stream_stream

            async def guarded_stream_stream(
                requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                await admit(context)
                async for response in stream_stream(requests, context):
                    yield response

            return with_behaviour(handler, guarded_stream_stream)
        stream_unary = handler.stream_unary

        async def guarded_stream_unary(
            requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
        ) -> Any:
            await admit(context)
            return await stream_unary(requests, context)

        return with_behaviour(handler, guarded_stream_unary)
