"""Which mesh identities may call which RPC.

Default deny: a method missing here is refused to everyone. Our services get
exactly the calls the call graph needs; internal teams (``client/<name>``
certificates from our CA) get the public internal API, and every call they
make on a user's behalf is audited (see ``authz``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection

from chatmesh.mesh.pki import Principal
from chatmesh.v1 import (
    directory_service_pb2,
    group_service_pb2,
    media_service_pb2,
    message_service_pb2,
    presence_service_pb2,
    session_service_pb2,
)

GATEWAY = Principal.service("gateway")
MSGSVC = Principal.service("msgsvc")
FANOUT = Principal.service("fanout")
NOTIFYSVC = Principal.service("notifysvc")


@dataclass(frozen=True, slots=True)
class Rule:
    services: frozenset[Principal] = frozenset()
    any_client: bool = False  # any internal team identity
    any_peer: bool = False  # anyone with a certificate from our CA (health, reflection)
    acts_for_user: bool = False  # audited: the request names the user acted for

    def allows(self, caller: Principal) -> bool:
        if self.any_peer or caller in self.services:
            return True
        return self.any_client and caller.kind == Principal.CLIENT


def _methods(service_descriptor: object, names: list[str] | None = None) -> list[str]:
    full_name = service_descriptor.full_name  # type: ignore[attr-defined]
    methods = service_descriptor.methods  # type: ignore[attr-defined]
    return [f"/{full_name}/{m.name}" for m in methods if names is None or m.name in names]


def _service(module: object, name: str) -> object:
    return module.DESCRIPTOR.services_by_name[name]  # type: ignore[attr-defined]


def build_policy() -> Mapping[str, Rule]:
    message = _service(message_service_pb2, "MessageService")
    directory = _service(directory_service_pb2, "DirectoryService")
    groups = _service(group_service_pb2, "GroupService")
    media = _service(media_service_pb2, "MediaService")
    sessions = _service(session_service_pb2, "SessionService")
    presence = _service(presence_service_pb2, "PresenceService")
    health = health_pb2.DESCRIPTOR.services_by_name["Health"]

    internal_api = Rule(any_client=True, acts_for_user=True)
    rules: dict[str, Rule] = {}
    # Client traffic: only gateways, which verified the user's token.
    rules |= dict.fromkeys(_methods(message, ["Connect"]), Rule(services=frozenset({GATEWAY})))
    # The public internal API: teams' tools and back offices, on a user's behalf.
    rules |= dict.fromkeys(
        [m for m in _methods(message) if not m.endswith("/Connect")], internal_api
    )
    rules |= dict.fromkeys(_methods(groups), internal_api)
    rules |= dict.fromkeys(_methods(media), internal_api)
    rules |= dict.fromkeys(_methods(directory), internal_api)
    # Internal teams read presence in bulk; gateways refresh their watchers'.
    rules |= dict.fromkeys(
        _methods(presence, ["GetPresence"]),
        Rule(services=frozenset({GATEWAY}), any_client=True),
    )
    # The service graph.
    rules |= dict.fromkeys(
        _methods(sessions, ["RegisterSessions", "UnregisterSessions", "GatewayHeartbeat"]),
        Rule(services=frozenset({GATEWAY})),
    )
    rules |= dict.fromkeys(
        # notifysvc: a device that connected since a push was queued gets none.
        _methods(sessions, ["LookupSessions"]),
        Rule(services=frozenset({MSGSVC, FANOUT, NOTIFYSVC})),
    )
    # Gateways report their users and act for the users connected to them.
    rules |= dict.fromkeys(
        _methods(
            presence,
            ["ReportPresence", "WatchPresence", "SetPresenceVisibility"],
        ),
        Rule(services=frozenset({GATEWAY})),
    )
    # Operations: any mesh identity may ask for health and describe the API.
    rules |= dict.fromkeys(_methods(health), Rule(any_peer=True))
    for reflection_service in (reflection.SERVICE_NAME, "grpc.reflection.v1.ServerReflection"):
        rules[f"/{reflection_service}/ServerReflectionInfo"] = Rule(any_peer=True)
    return rules
