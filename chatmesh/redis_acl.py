"""The Redis users of the services: each may touch only its own keys and
channels, with only the commands its kind of use needs.

One definition for every deployment: ``LocalCluster`` creates these users
(for its key prefix, with fresh passwords) on the Redis it runs against, and
the dev overlay's ``acl.conf`` holds the same rules for the prefix ``cm:``
(tests/deploy checks they agree). Keys a service starts to use must be
added here. A service missing here (notifysvc) uses no Redis and has no user.
"""

from __future__ import annotations

# A data user: reads, writes, MULTI/EXEC and Lua (whose commands are checked
# against the same key patterns), never the dangerous or keyspace-wide ones.
_DATA = "-@all +@read +@write +@transaction -@dangerous -scan -randomkey -function"
_LUA = "+evalsha +eval +script|load +script|exists"
# A Redis Cluster client learns the slot map and the commands' key positions.
_CLUSTER = "+cluster|slots +command"
# Plain pub/sub on one Redis, sharded pub/sub on a cluster (chatmesh.pubsub).
_SUBSCRIBE = "+subscribe +unsubscribe +ssubscribe +sunsubscribe"
_PUBLISH = "+publish +spublish"


def service_rules(prefix: str) -> dict[str, str]:
    """ACL rules (after ``resetkeys resetchannels``) of each service's user."""
    p = prefix
    return {
        # Pub/sub, device removals and handshake budgets: its deliveries, the
        # presence of users its connections watch and the revocations channel,
        # disconnects to other gateways, removal
        # records read at the handshake, the rate limiter's Lua (whose GET,
        # SET and TIME are checked against this user too).
        "gateway": f"%R~{p}revoked:* ~{p}rl:* &{p}gw:* &{p}revocations &{p}presence-events:*"
        f" -@all +ping +get +set +time {_LUA} {_SUBSCRIBE} {_PUBLISH} {_CLUSTER}",
        # Publishes deliveries to the gateways' channels; keeps no keys.
        "fanout": f"&{p}gw:* -@all +ping {_PUBLISH} {_CLUSTER}",
        # Claims, the route journal, worker-id leases (hash-tagged with the
        # prefix inside the tag), device removals, per-user budgets.
        "msgsvc": f"~{p}claim:* ~{p}routes:* ~{p}routes-instances ~{{{p}worker:* ~{p}revoked:*"
        f" ~{p}rl:* &{p}gw:* &{p}revocations {_DATA} {_LUA} +time {_PUBLISH} {_SUBSCRIBE}"
        f" +ping {_CLUSTER}",
        "sessionsvc": f"~{p}sessions:* ~{p}gateway-alive:* {_DATA} {_LUA} +ping {_CLUSTER}",
        # Per-user presence hashes, per-gateway populations, leases and due
        # offlines (one hash tag); publishes each user's changes.
        "presencesvc": f"~{p}presence:* ~{p}presence-gw:* ~{p}{{presence}}:*"
        f" &{p}presence-events:* {_DATA} {_LUA} {_PUBLISH} +ping {_CLUSTER}",
    }


def user_name(prefix: str, service: str) -> str:
    """Users of one Redis are named apart per key prefix (tests share one)."""
    return f"{prefix}{service}"
