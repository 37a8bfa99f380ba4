"""Every process serves gRPC health and reflection over the mesh's mutual
TLS: grpcurl with an internal client certificate can list it, without one it
cannot connect."""

from __future__ import annotations

import subprocess
import time
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
            "SetConversationMute",
        ],
        "chatmesh.v1.GroupService": ["CreateGroup", "ChangeGroup", "GetGroup"],
        "chatmesh.v1.MediaService": ["CreateUpload", "CompleteUpload", "GetDownloadUrl"],
    },
    "sessionsvc": {
        "chatmesh.v1.SessionService": [
            "RegisterSessions",
            "UnregisterSessions",
            "LookupSessions",
            "GatewayHeartbeat",
        ],
    },
    "presencesvc": {
        "chatmesh.v1.PresenceService": [
            "ReportPresence",
            "WatchPresence",
            "SetPresenceVisibility",
            "GetPresence",
        ]
    },
}
# Processes with no API of their own, whose gRPC port serves health for probes.
HEALTH_ONLY = ("notifysvc",)
# A worker's readiness check runs every 2 s (0.5 s after a failure); one
# that failed twice is ready again after its next passing check.
HEALTHY_WITHIN_S = 15.0


def _run_grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    assert Path(GRPCURL).exists(), "grpcurl missing: run deploy/local/tools.sh (make test does)"
    return subprocess.run([str(GRPCURL), *args], capture_output=True, text=True, timeout=30)


def _grpcurl(cluster: LocalCluster, service: str, *args: str) -> str:
    """grpcurl as an operator: the ``client/ops`` certificate, verifying the
    server's certificate names ``service``."""
    tls = cluster.client_tls("ops").directory
    done = _run_grpcurl(
        "-cacert",
        str(tls / "ca.crt"),
        "-cert",
        str(tls / "tls.crt"),
        "-key",
        str(tls / "tls.key"),
        "-servername",
        service,
        *args,
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
    listed = _grpcurl(cluster, process, addr, "list").split()
    # Exactly the declared services, plus health and reflection.
    assert {n for n in listed if n.startswith("chatmesh.")} == set(SERVICES[process])
    assert "grpc.health.v1.Health" in listed
    methods = SERVICES[process][service]
    listed_methods = _grpcurl(cluster, process, addr, "list", service).split()
    assert set(listed_methods) == {f"{service}.{m}" for m in methods}


def test_gateways_and_workers_serve_health_and_reflection(cluster: LocalCluster) -> None:
    targets = [("gateway", f"127.0.0.1:{port}") for port in cluster.config.ports.gateway_grpc]
    targets += [(name, cluster.grpc_addr(name)) for name in HEALTH_ONLY]
    for name, addr in targets:
        listed = _grpcurl(cluster, name, addr, "list").split()
        assert "grpc.health.v1.Health" in listed
        if name in HEALTH_ONLY:
            assert not [n for n in listed if n.startswith("chatmesh.")], listed
        # Readiness follows the process's stores: under the whole suite's load
        # a Kafka metadata ping may miss its deadline twice in a row and turn a
        # worker NOT_SERVING for a few seconds, until its next check passes.
        deadline = time.monotonic() + HEALTHY_WITHIN_S
        while '"status": "SERVING"' not in (
            checked := _grpcurl(cluster, name, addr, "grpc.health.v1.Health/Check")
        ):
            assert time.monotonic() < deadline, (name, checked)
            time.sleep(0.5)


@pytest.mark.parametrize("process", sorted([*SERVICES, *HEALTH_ONLY]))
def test_no_client_certificate_no_connection(cluster: LocalCluster, process: str) -> None:
    addr = cluster.grpc_addr(process)
    plaintext = _run_grpcurl("-plaintext", addr, "list")
    assert plaintext.returncode != 0
    ca = cluster.client_tls("ops").directory / "ca.crt"
    no_certificate = _run_grpcurl("-cacert", str(ca), "-servername", process, addr, "list")
    assert no_certificate.returncode != 0
