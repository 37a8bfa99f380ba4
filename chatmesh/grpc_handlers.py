"""Rewrapping a gRPC method handler: what every server interceptor does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc


def with_behaviour(handler: grpc.RpcMethodHandler, behaviour: Callable[..., Any]) -> Any:
    """A handler of the same kind and (de)serializers as ``handler`` whose
    behaviour is ``behaviour``."""
    if handler.unary_unary is not None:
        make: Callable[..., Any] = grpc.unary_unary_rpc_method_handler
    elif handler.unary_stream is not None:
        make = grpc.unary_stream_rpc_method_handler
    elif handler.stream_stream is not None:
        make = grpc.stream_stream_rpc_method_handler
    else:
        make = grpc.stream_unary_rpc_method_handler
    return make(
        behaviour,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
