"""Every process serves gRPC health and reflection: grpcurl can list it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from chatmesh.devcluster import REPO_ROOT, LocalCluster

GRPCURL = REPO_ROOT / ".local" / "bin" / "grpcurl"

# Process -> the services it exposes -> their methods.
SERVICES: dict[str, dict[str, list[str]]] = {
    "msgsvc": {
        "chatmesh.v1.MessageService": [
            "Connect",
            "SendMessage",
            "ListMessages",
            "Sync",
            "SyncConversation",
            "MarkReceipt",
            "ListConversations",
            "GetReceipts",
        ],
        "chatmesh.v1.DirectoryService": [
            "CreateUser",
            "RegisterDevice",
            "ListDevices",
            "RemoveDevice",
        ],
        "chatmesh.v1.GroupService": ["CreateGroup", "ChangeGroup", "GetGroup"],
    },
    "sessionsvc": {
        "chatmesh.v1.SessionService": [
            "RegisterSessions",
            "UnregisterSessions",
            "LookupSessions",
            "GatewayHeartbeat",
        ],
    },
    "presencesvc": {"chatmesh.v1.PresenceService": ["ReportHeartbeats", "GetPresence"]},
    "notifysvc": {"chatmesh.v1.NotificationService": ["EnqueuePush"]},
}


def _grpcurl(*args: str) -> str:
    assert Path(GRPCURL).exists(), "grpcurl missing: run deploy/local/tools.sh (make test does)"
    done = subprocess.run(
        [str(GRPCURL), "-plaintext", *args], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    ("process", "service"),
    [(process, service) for process, services in sorted(SERVICES.items()) for service in services],
)
def test_grpcurl_lists_every_method_through_reflection(
    cluster: LocalCluster, process: str, service: str
) -> None:
    addr = cluster.grpc_addr(process)
    listed = _grpcurl(addr, "list").split()
    # Exactly the declared services, plus health and reflection.
    assert {n for n in listed if n.startswith("chatmesh.")} == set(SERVICES[process])
    assert "grpc.health.v1.Health" in listed
    methods = SERVICES[process][service]
    assert set(_grpcurl(addr, "list", service).split()) == {f"{service}.{m}" for m in methods}


def test_gateways_serve_health_and_reflection(cluster: LocalCluster) -> None:
    for port in cluster.config.ports.gateway_grpc:
        addr = f"127.0.0.1:{port}"
        assert "grpc.health.v1.Health" in _grpcurl(addr, "list").split()
        assert '"status": "SERVING"' in _grpcurl(addr, "grpc.health.v1.Health/Check")
