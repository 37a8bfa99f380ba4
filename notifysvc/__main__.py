"""``python -m notifysvc``: the notification service process."""

from __future__ import annotations

import os

import redis.asyncio as redis
import uvloop

from chatmesh import logs
from chatmesh.grpc_server import GrpcServer, serve_until_terminated
from chatmesh.settings import DEFAULT_REDIS_URL, CommonSettings, env_str
from chatmesh.v1 import notification_service_pb2, notification_service_pb2_grpc
from notifysvc.queue import RedisPushQueue
from notifysvc.servicer import NotificationServicer

DEFAULT_GRPC_PORT = 50054


async def run(common: CommonSettings, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    servicer = NotificationServicer(RedisPushQueue(client, common.key_prefix))
    server = GrpcServer(
        common.grpc_listen,
        [notification_service_pb2.DESCRIPTOR.services_by_name["NotificationService"].full_name],
        lambda s: notification_service_pb2_grpc.add_NotificationServiceServicer_to_server(
            servicer, s
        ),
    )
    try:
        await serve_until_terminated(server, grace_s=5.0)
    finally:
        await client.aclose()


def main() -> None:
    common = CommonSettings.from_env(os.environ, default_grpc_port=DEFAULT_GRPC_PORT)
    logs.configure("notifysvc", common.log_level)
    uvloop.run(run(common, env_str(os.environ, "REDIS_URL", DEFAULT_REDIS_URL)))


if __name__ == "__main__":
    main()
