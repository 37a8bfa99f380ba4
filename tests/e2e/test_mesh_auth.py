"""The mesh refuses callers it cannot authenticate and calls the policy does
not allow, against the real service processes."""

from __future__ import annotations

import datetime
from pathlib import Path

import grpc
import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from chatmesh import redis_acl
from chatmesh.devcluster import LocalCluster
from chatmesh.errors import reason_of
from chatmesh.grpc_server import mesh_channel
from chatmesh.mesh.credentials import MeshTls
from chatmesh.mesh.pki import LocalCA, Principal
from chatmesh.v1 import (
    directory_service_pb2,
    directory_service_pb2_grpc,
    message_service_pb2,
    message_service_pb2_grpc,
    session_service_pb2,
    session_service_pb2_grpc,
)
from tests.conftest import unique

CALL_TIMEOUT_S = 5.0


def _as(cluster: LocalCluster, identity: str) -> MeshTls:
    return MeshTls(cluster.tls_dir / identity)


async def _lookup(tls: MeshTls, cluster: LocalCluster) -> None:
    async with mesh_channel(tls, cluster.grpc_addr("sessionsvc"), "sessionsvc") as channel:
        await session_service_pb2_grpc.SessionServiceStub(channel).LookupSessions(
            session_service_pb2.LookupSessionsRequest(user_ids=["nobody"]),
            timeout=CALL_TIMEOUT_S,
        )


async def _refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call  # type: ignore[misc]
    return failed.value


async def test_a_service_may_make_the_calls_its_role_needs(cluster: LocalCluster) -> None:
    await _lookup(_as(cluster, "service/msgsvc"), cluster)
    await _lookup(_as(cluster, "service/fanout"), cluster)


@pytest.mark.parametrize("identity", ["service/gateway", "service/presencesvc", "client/tests"])
async def test_other_identities_cannot_look_sessions_up(
    cluster: LocalCluster, identity: str
) -> None:
    failed = await _refused(_lookup(_as(cluster, identity), cluster))
    assert failed.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(failed) == "CALLER_NOT_ALLOWED"


async def test_a_gateway_certificate_cannot_send_as_a_user(
    cluster: LocalCluster,
) -> None:
    gateway = _as(cluster, "service/gateway")
    async with mesh_channel(gateway, cluster.grpc_addr("msgsvc"), "msgsvc") as channel:
        failed = await _refused(
            message_service_pb2_grpc.MessageServiceStub(channel).SendMessage(
                message_service_pb2.SendMessageRequest(
                    sender_user_id=unique("alice"),
                    client_msg_id="m1",
                    to_user_id=unique("bob"),
                    kind=1,
                    body=b"forged",
                ),
                timeout=CALL_TIMEOUT_S,
            )
        )
    assert failed.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_only_gateways_may_open_the_client_stream(cluster: LocalCluster) -> None:
    async with cluster.channel("msgsvc") as channel:  # client/tests
        call = message_service_pb2_grpc.MessageServiceStub(channel).Connect(timeout=CALL_TIMEOUT_S)
        # Refused before the first request is read: no write is needed.
        failed = await _refused(call.read())
    assert failed.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_certificate_from_another_ca_cannot_connect(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    # Claims to be msgsvc, with our CA's root to check the server by.
    forged = LocalCA.create(tmp_path / "foreign-ca").issue(
        Principal.service("msgsvc"), tmp_path / "forged"
    )
    (forged / "ca.crt").write_bytes((cluster.tls_dir / "ca" / "ca.crt").read_bytes())
    failed = await _refused(_lookup(MeshTls(forged), cluster))
    assert failed.code() == grpc.StatusCode.UNAVAILABLE  # no TLS session, no call


async def test_an_expired_certificate_cannot_connect(cluster: LocalCluster, tmp_path: Path) -> None:
    ca = LocalCA(cluster.tls_dir / "ca")
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=60)
    expired = ca.issue(
        Principal.service("msgsvc"), tmp_path / "expired", days=30, not_before=long_ago
    )
    failed = await _refused(_lookup(MeshTls(expired), cluster))
    assert failed.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_certificate_without_a_mesh_identity_is_unauthenticated(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """Signed by our CA but naming no chatmesh SPIFFE id: not a caller."""
    ca = LocalCA(cluster.tls_dir / "ca")
    foreign = ca.issue(Principal.service("msgsvc"), tmp_path / "foreign-domain")
    _rewrite_uri(ca, foreign, "spiffe://example.org/service/msgsvc")
    failed = await _refused(_lookup(MeshTls(foreign), cluster))
    assert failed.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason_of(failed) == "NO_MESH_IDENTITY"


def _rewrite_uri(ca: LocalCA, directory: Path, uri: str) -> None:
    """Re-signs the certificate in ``directory`` with ``uri`` as its only URI SAN."""
    certificate = x509.load_pem_x509_certificate((directory / "tls.crt").read_bytes())
    key = serialization.load_pem_private_key((directory / "tls.key").read_bytes(), None)
    ca_key = serialization.load_pem_private_key(
        (ca.directory / "ca.key").read_bytes(), password=None
    )
    sans = x509.SubjectAlternativeName(
        [x509.UniformResourceIdentifier(uri), x509.DNSName("msgsvc")]
    )
    rebuilt = (
        x509.CertificateBuilder()
        .subject_name(certificate.subject)
        .issuer_name(certificate.issuer)
        .public_key(key.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(certificate.not_valid_before_utc)
        .not_valid_after(certificate.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(sans, critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    (directory / "tls.crt").write_bytes(rebuilt.public_bytes(serialization.Encoding.PEM))


async def test_internal_clients_acting_for_a_user_are_audited(cluster: LocalCluster) -> None:
    """The audit record is written by msgsvc: read it from its log."""
    user = unique("audited")
    async with cluster.channel("msgsvc") as channel:
        await directory_service_pb2_grpc.DirectoryServiceStub(channel).CreateUser(
            directory_service_pb2.CreateUserRequest(user_id=user, display_name="A"),
            timeout=CALL_TIMEOUT_S,
        )
    log_text = cluster.processes["msgsvc"].log_path.read_text()
    audit_lines = [line for line in log_text.splitlines() if user in line]
    assert any(
        '"logger": "chatmesh.audit"' in line and '"caller": "client/tests"' in line
        for line in audit_lines
    ), audit_lines


def test_each_service_talks_to_redis_as_its_own_user(cluster: LocalCluster) -> None:
    """Every process connects with its service's ACL user (chatmesh.redis_acl),
    which may touch only that service's keys and channels."""
    client = redis.Redis.from_url(cluster.redis_url)
    try:
        users = {
            entry["user"]
            for entry in client.client_list()
            if entry["user"].startswith(cluster.config.key_prefix)
        }
        refused = redis.Redis.from_url(cluster.service_redis_url("gateway-1"))
        try:
            with pytest.raises(redis.exceptions.NoPermissionError):
                refused.get(f"{cluster.config.key_prefix}sessions:{{anyone}}")
        finally:
            refused.close()
    finally:
        client.close()
    prefix = cluster.config.key_prefix
    expected = {redis_acl.user_name(prefix, s) for s in redis_acl.service_rules(prefix)}
    assert users == expected
