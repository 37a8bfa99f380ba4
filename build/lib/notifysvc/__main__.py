"""``python -m notifysvc``: the notification service process."""

from __future__ import annotations

from chatmesh.redis_service import run_redis_service
from chatmesh.v1 import notification_service_pb2, notification_service_pb2_grpc
from notifysvc.queue import RedisPushQueue
from notifysvc.servicer import NotificationServicer

DEFAULT_GRPC_PORT = 50054


def main() -> None:
    run_redis_service(
        name="notifysvc",
        service_full_name=notification_service_pb2.DESCRIPTOR.services_by_name[
            "NotificationService"
        ].full_name,
        default_grpc_port=DEFAULT_GRPC_PORT,
        wire=lambda client, settings: (
            lambda server: notification_service_pb2_grpc.add_NotificationServiceServicer_to_server(
                NotificationServicer(RedisPushQueue(client, settings.common.key_prefix)), server
            )
        ),
    )


if __name__ == "__main__":
    main()
