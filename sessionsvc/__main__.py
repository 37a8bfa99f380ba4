"""``python -m sessionsvc``: the session service process."""

from __future__ import annotations

from chatmesh.redis_service import run_redis_service
from chatmesh.v1 import session_service_pb2, session_service_pb2_grpc
from sessionsvc.servicer import SessionServicer
from sessionsvc.store import RedisSessionStore

DEFAULT_GRPC_PORT = 50052
# A gateway heartbeats every few seconds with a TTL longer than that; one
# more second before its sessions stop counting after it dies.
GATEWAY_ALIVE_FOR_S = 1.0


def main() -> None:
    run_redis_service(
        name="sessionsvc",
        service_full_name=session_service_pb2.DESCRIPTOR.services_by_name[
            "SessionService"
        ].full_name,
        default_grpc_port=DEFAULT_GRPC_PORT,
        wire=lambda client, settings: (
            lambda server: session_service_pb2_grpc.add_SessionServiceServicer_to_server(
                SessionServicer(
                    RedisSessionStore(
                        client, settings.common.key_prefix, alive_for_s=GATEWAY_ALIVE_FOR_S
                    )
                ),
                server,
            )
        ),
    )


if __name__ == "__main__":
    main()
