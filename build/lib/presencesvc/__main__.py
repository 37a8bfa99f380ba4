"""``python -m presencesvc``: the presence service process."""

from __future__ import annotations

from chatmesh.clock import SystemClock
from chatmesh.redis_service import run_redis_service
from chatmesh.v1 import presence_service_pb2, presence_service_pb2_grpc
from presencesvc.servicer import PresenceServicer
from presencesvc.store import RedisPresenceStore

DEFAULT_GRPC_PORT = 50053


def main() -> None:
    run_redis_service(
        name="presencesvc",
        service_full_name=presence_service_pb2.DESCRIPTOR.services_by_name[
            "PresenceService"
        ].full_name,
        default_grpc_port=DEFAULT_GRPC_PORT,
        wire=lambda client, settings: (
            lambda server: presence_service_pb2_grpc.add_PresenceServiceServicer_to_server(
                PresenceServicer(
                    RedisPresenceStore(client, settings.common.key_prefix, SystemClock())
                ),
                server,
            )
        ),
    )


if __name__ == "__main__":
    main()
