"""Names of the Redis pub/sub channels shared by msgsvc and the gateways."""

from __future__ import annotations


def gateway_channel(key_prefix: str, gateway_id: str) -> str:
    """The channel a gateway subscribes to for deliveries to its connections."""
    return f"{key_prefix}gw:{gateway_id}:deliveries"
