"""Names of the Redis pub/sub channels shared by the services and the gateways."""

from __future__ import annotations


def gateway_channel(key_prefix: str, gateway_id: str) -> str:
    """The channel a gateway subscribes to for deliveries to its connections."""
    return f"{key_prefix}gw:{gateway_id}:deliveries"


def presence_channel(key_prefix: str, user_id: str) -> str:
    """The channel presencesvc publishes a user's presence changes on; the
    gateways whose connections watch the user subscribe to it, once each."""
    return f"{key_prefix}presence-events:{{{user_id}}}"
