"""The Kubernetes manifests, rendered offline by the real kustomize binary.

Every rendered resource is validated against the Kubernetes OpenAPI schemas
(strict: unknown fields fail) for the oldest supported cluster version and
the newest one the validator knows, then checked for the properties the
services depend on. cert-manager's kinds are CRDs with no schema in the
validator: they are checked field by field here instead. kustomize comes
from `bash deploy/local/tools.sh`.
"""

from __future__ import annotations

import ast
import base64
import ipaddress
import json
import re
from urllib.parse import urlsplit

import kubernetes_validate
import pytest

from chatmesh import edge_config, redis_acl
from chatmesh.mesh.pki import SERVICES as MESH_SERVICES
from chatmesh.mesh.pki import TRUST_DOMAIN, Principal, service_dns_names
from tests.deploy.manifests import (
    OVERLAYS,
    Resource,
    config_map,
    of_kind,
    one_container,
    render,
    secret_value,
)

# Oldest cluster version supported (preStop `sleep` handlers are on by
# default from 1.30) and the newest schema set the validator ships.
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())

GRPC_SERVICES = {"msgsvc": 50051, "sessionsvc": 50052, "presencesvc": 50053, "notifysvc": 50054}
FANOUT_HEALTH_PORT = 50055
GATEWAY_WS_PORT = 8100
GATEWAY_HEALTH_PORT = 50060
# Plain HTTP on every process: /healthz, /readyz, /metrics. The kubelet cannot
# present a mesh certificate, so no probe may use a gRPC port.
OPS_PORT = 9090
OPS_PORT_SPEC = {"name": "ops", "containerPort": OPS_PORT, "protocol": "TCP"}
SCRAPE_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(OPS_PORT),
    "prometheus.io/path": "/metrics",
}
IMAGE = "ghcr.io/chatmesh/chatmesh:0.1.0"

MESH_TLS_DIR = "/etc/chatmesh/mesh"
MESH_ISSUER = "chatmesh-mesh"
MESH_CA = "chatmesh-mesh-ca"
SELF_SIGNED_ISSUER = "chatmesh-selfsigned"

# The cert-manager kinds these manifests use. Any other CRD kind still fails
# the schema test, so it cannot slip in unchecked.
CERT_MANAGER_API = "cert-manager.io/v1"
CERT_MANAGER_KINDS = {"Issuer", "Certificate"}
CERTIFICATE_FIELDS = {
    "additionalOutputFormats",
    "commonName",
    "dnsNames",
    "duration",
    "emailAddresses",
    "encodeUsagesInRequest",
    "ipAddresses",
    "isCA",
    "issuerRef",
    "keystores",
    "literalSubject",
    "nameConstraints",
    "otherNames",
    "privateKey",
    "renewBefore",
    "renewBeforePercentage",
    "revisionHistoryLimit",
    "secretName",
    "secretTemplate",
    "subject",
    "uris",
    "usages",
}
CERTIFICATE_IDENTITY_FIELDS = {
    "commonName",
    "dnsNames",
    "emailAddresses",
    "ipAddresses",
    "literalSubject",
    "otherNames",
    "uris",
}
KEY_USAGES = {
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
}
ISSUER_TYPES = {"acme", "ca", "selfSigned", "vault", "venafi"}
ECDSA_SIZES = {256, 384, 521}

CONFIG_KEYS = {
    "CHATMESH_LOG_LEVEL",
    "CHATMESH_OPS_LISTEN",
    "CHATMESH_REDIS_URL",
    "CHATMESH_PG_DSN",
    "CHATMESH_CASSANDRA_HOSTS",
    "CHATMESH_CASSANDRA_PORT",
    "CHATMESH_CASSANDRA_KEYSPACE",
    "CHATMESH_CASSANDRA_CONSISTENCY",
    "CHATMESH_CASSANDRA_REPLICATION",
    "CHATMESH_MSGSVC_ADDR",
    "CHATMESH_SESSIONSVC_ADDR",
    "CHATMESH_PRESENCESVC_ADDR",
    "CHATMESH_KAFKA_BOOTSTRAP",
    "CHATMESH_MESSAGE_TOPIC",
    "CHATMESH_MESSAGE_TOPIC_PARTITIONS",
    "CHATMESH_MESSAGE_TOPIC_REPLICATION",
    "CHATMESH_PUSH_TOPIC",
    "CHATMESH_PUSH_TOPIC_PARTITIONS",
    "CHATMESH_S3_ENDPOINT",
    "CHATMESH_S3_PUBLIC_ENDPOINT",
    "CHATMESH_S3_REGION",
    "CHATMESH_S3_BUCKET",
}
# The object store's keys: msgsvc's own Secret, nobody else's.
S3_SECRET = "s3-msgsvc"
S3_KEYS = ("CHATMESH_S3_ACCESS_KEY_ID", "CHATMESH_S3_SECRET_ACCESS_KEY")
PUSH_SECRET = "push-providers"
PUSH_DIR = "/var/run/chatmesh/push"
# Each provider's settings: the files notifysvc reads at start, then the rest.
PUSH_PROVIDERS = {
    "fcm": ["CHATMESH_FCM_SERVICE_ACCOUNT_FILE"],
    "apns": ["CHATMESH_APNS_KEY_FILE", "CHATMESH_APNS_TEAM_ID", "CHATMESH_APNS_KEY_ID"],
    "webpush": ["CHATMESH_WEBPUSH_VAPID_KEY_FILE", "CHATMESH_WEBPUSH_SUBJECT"],
}
# Which providers each overlay sends through (components/push-<provider>).
PUSH_ENABLED = {
    "base": set(),
    "dev": set(),
    "dev-multinode": set(),
    "prod": {"fcm", "apns", "webpush"},
}

# The overlays that run the stores in the namespace and generate their own
# throwaway Secrets (hash-suffixed names); the others name Secrets that the
# cluster's secret store provides.
IN_NAMESPACE_STORES = ("dev", "dev-multinode")
MULTINODE = "dev-multinode"


def _env(container: Resource) -> dict[str, Resource]:
    return {e["name"]: e for e in container.get("env", [])}


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _http_probe(container: Resource, probe: str) -> tuple[str, str]:
    """The (path, port) a probe GETs; fails for any other kind of probe."""
    action = container[probe]
    assert not set(action) & {"grpc", "tcpSocket", "exec"}, f"{container['name']} {probe}"
    return action["httpGet"]["path"], action["httpGet"]["port"]


def _is_cert_manager(doc: Resource) -> bool:
    return doc["apiVersion"] == CERT_MANAGER_API and doc["kind"] in CERT_MANAGER_KINDS


def _hours(duration: str) -> float:
    """A Go duration as cert-manager writes them ("2160h", "1h30m")."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match and duration, f"not a Go duration: {duration!r}"
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours + minutes / 60 + seconds / 3600


def _mesh_identity(certificate: Resource) -> Principal:
    (uri,) = certificate["spec"]["uris"]
    principal = Principal.from_uri(uri)
    assert principal is not None, f"{certificate['metadata']['name']}: {uri} is no mesh identity"
    return principal


# --- schema ------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_resource_matches_kubernetes_schema(overlay: str, version: str) -> None:
    errors = []
    for doc in render(overlay):
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if _is_cert_manager(doc):
            continue  # no schema: test_cert_manager_resources_are_well_formed
        try:
            kubernetes_validate.validate(doc, desired_version=version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{name}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{name}: {exc.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_is_namespaced_and_labelled(overlay: str) -> None:
    for doc in render(overlay):
        meta = doc["metadata"]
        assert meta["labels"]["app.kubernetes.io/part-of"] == "chatmesh", meta["name"]
        if doc["kind"] == "Namespace":
            assert meta["name"] == "chatmesh"
        else:
            assert meta["namespace"] == "chatmesh", f"{doc['kind']}/{meta['name']}"


# --- workloads -------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_have_probes_limits_and_hardening(overlay: str) -> None:
    docs = render(overlay)
    workloads = {
        **of_kind(docs, "Deployment"),
        **of_kind(docs, "StatefulSet"),
        **of_kind(docs, "Job"),
    }
    assert workloads
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        init_containers = pod.get("initContainers", [])
        for container in [*init_containers, *pod["containers"]]:
            where = f"{name}/{container['name']}"
            # A Job's containers and initContainers run to completion: no probes.
            if workload["kind"] != "Job" and container not in init_containers:
                assert "readinessProbe" in container, where
                assert "livenessProbe" in container, where
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert {"cpu", "memory"} <= set(resources["limits"]), where
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            if workload["kind"] != "StatefulSet" or container in init_containers:
                assert security["readOnlyRootFilesystem"] is True, where
                assert security["runAsNonRoot"] is True, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grpc_services_are_wired(overlay: str) -> None:
    docs = render(overlay)
    deployments = of_kind(docs, "Deployment")
    services = of_kind(docs, "Service")
    config = config_map(docs, "chatmesh-config")["data"]
    for name, port in GRPC_SERVICES.items():
        deployment = deployments[name]
        container = one_container(deployment)
        assert container["image"] == IMAGE
        assert container["command"] == ["python", "-m", name]
        assert container["ports"] == [
            {"name": "grpc", "containerPort": port, "protocol": "TCP"},
            OPS_PORT_SPEC,
        ]
        assert _env(container)["CHATMESH_GRPC_LISTEN"]["value"] == f"0.0.0.0:{port}"

        # Headless, so that gRPC clients balance across every pod.
        service = services[name]
        assert service["spec"]["clusterIP"] == "None"
        assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(port, "grpc")]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert _labels_match(service["spec"]["selector"], pod_labels)

        # Callers find it through the shared config; notifysvc has none
        # (its Service is for operators' health checks).
        addr_key = f"CHATMESH_{name.upper()}_ADDR"
        if any(callee == name for _, callee, _ in CALLS):
            assert config[addr_key] == f"dns:///{name}.chatmesh.svc.cluster.local:{port}"
        else:
            assert addr_key not in config


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_fanout_worker(overlay: str) -> None:
    docs = render(overlay)
    deployments = of_kind(docs, "Deployment")
    fanout = deployments["fanout"]
    container = one_container(fanout)
    assert container["command"] == ["python", "-m", "msgsvc.fanout"]
    # The same image and settings as msgsvc, whose code it runs.
    msgsvc = one_container(deployments["msgsvc"])
    assert container["image"] == msgsvc["image"]
    assert container["envFrom"] == msgsvc["envFrom"]
    assert container["ports"] == [
        {"name": "grpc", "containerPort": FANOUT_HEALTH_PORT, "protocol": "TCP"},
        OPS_PORT_SPEC,
    ]
    env = _env(container)
    assert env["CHATMESH_GRPC_LISTEN"]["value"] == f"0.0.0.0:{FANOUT_HEALTH_PORT}"
    assert env["CHATMESH_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # A killed worker's partitions move on after the consumer session timeout;
    # a stopping one gets time to leave the group.
    assert fanout["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 10

    # Nothing calls it: health only, no Service.
    pod_labels = fanout["spec"]["template"]["metadata"]["labels"]
    for name, service in of_kind(docs, "Service").items():
        assert not _labels_match(service["spec"]["selector"], pod_labels), name

    # More workers than partitions would sit idle.
    config = config_map(docs, "chatmesh-config")["data"]
    replicas = fanout["spec"]["replicas"]
    assert 1 <= replicas <= int(config["CHATMESH_MESSAGE_TOPIC_PARTITIONS"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_notifysvc(overlay: str) -> None:
    docs = render(overlay)
    deployments = of_kind(docs, "Deployment")
    notifysvc = deployments["notifysvc"]
    pod = notifysvc["spec"]["template"]["spec"]
    container = one_container(notifysvc)
    # msgsvc's settings for the stores both use (PostgreSQL, Cassandra, Kafka
    # and their credentials): the same ConfigMap and Secret.
    assert container["envFrom"] == one_container(deployments["msgsvc"])["envFrom"]
    env = _env(container)
    assert env["CHATMESH_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert int(env["CHATMESH_PUSH_WINDOW_MS"]["value"]) >= 0
    # Leaving the consumer group, and the last sends, take a few seconds.
    assert pod["terminationGracePeriodSeconds"] >= 10

    config = config_map(docs, "chatmesh-config")["data"]
    assert config["CHATMESH_PUSH_TOPIC"] != config["CHATMESH_MESSAGE_TOPIC"]
    assert re.fullmatch(r"[A-Za-z0-9._-]+", config["CHATMESH_PUSH_TOPIC"])
    # More instances than partitions would sit idle.
    assert 1 <= notifysvc["spec"]["replicas"] <= int(config["CHATMESH_PUSH_TOPIC_PARTITIONS"])

    # The providers' keys: an optional Secret, so that the pod starts without
    # it, mounted read-only and readable through the pod's group only.
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == PUSH_DIR]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == PUSH_SECRET
    assert volume["secret"]["optional"] is True
    mode = volume["secret"]["defaultMode"]
    assert mode & 0o040 and not mode & 0o007, f"mode {mode:o}"

    # A provider's file setting without its Secret fails notifysvc at start:
    # only an overlay that enables the provider sets any of its settings, and
    # then all of them, each from the Secret.
    for provider, names in PUSH_PROVIDERS.items():
        if provider not in PUSH_ENABLED[overlay]:
            assert not set(names) & set(env), provider
            continue
        for name in names:
            if name.endswith("_FILE"):
                assert env[name]["value"].startswith(PUSH_DIR + "/"), name
            else:
                ref = env[name]["valueFrom"]["secretKeyRef"]
                assert ref["name"] == PUSH_SECRET and not ref.get("optional"), name
    known = {name for names in PUSH_PROVIDERS.values() for name in names}
    prefixes = ("CHATMESH_FCM_", "CHATMESH_APNS_", "CHATMESH_WEBPUSH_")
    assert not {name for name in env if name.startswith(prefixes)} - known


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_postgres_clients_share_msgsvc_settings(overlay: str) -> None:
    # The DSN (with any sslrootcert) is in the ConfigMap and PGPASSWORD in the
    # Secret: a client reading other envFrom sources, or overriding one of
    # them in its env, would reach PostgreSQL differently from the rest.
    deployments = of_kind(render(overlay), "Deployment")
    msgsvc_env_from = one_container(deployments["msgsvc"])["envFrom"]
    clients = [name for name, stores in STORES_USED.items() if "postgres" in stores]
    assert {"msgsvc", "notifysvc", "presencesvc"} <= set(clients)
    for name in clients:
        container = one_container(deployments[name])
        assert container["envFrom"] == msgsvc_env_from, name
        overrides = {e for e in _env(container) if e == "CHATMESH_PG_DSN" or e.startswith("PG")}
        assert not overrides, f"{name}: {overrides}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_presencesvc(overlay: str) -> None:
    env = _env(one_container(of_kind(render(overlay), "Deployment")["presencesvc"]))
    assert int(env["CHATMESH_PRESENCE_GRACE_MS"]["value"]) >= 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway(overlay: str) -> None:
    docs = render(overlay)
    gateway = of_kind(docs, "Deployment")["gateway"]
    pod = gateway["spec"]["template"]["spec"]
    container = one_container(gateway)
    assert container["command"] == ["python", "-m", "gateway"]
    env = _env(container)
    assert env["CHATMESH_WS_LISTEN"]["value"] == f"0.0.0.0:{GATEWAY_WS_PORT}"
    assert env["CHATMESH_GRPC_LISTEN"]["value"] == f"0.0.0.0:{GATEWAY_HEALTH_PORT}"
    assert env["CHATMESH_GATEWAY_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["CHATMESH_JWT_PUBLIC_KEY_FILE"]["value"] == "/etc/chatmesh/jwt/public.pem"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"ws": GATEWAY_WS_PORT, "grpc-health": GATEWAY_HEALTH_PORT, "ops": OPS_PORT}

    # The public key comes from the chatmesh-jwt Secret, read-only.
    (jwt_mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/chatmesh/jwt"]
    assert jwt_mount["readOnly"] is True
    (jwt_volume,) = [v for v in pod["volumes"] if v["name"] == jwt_mount["name"]]
    assert jwt_volume["secret"]["secretName"] == "chatmesh-jwt"
    assert [i["path"] for i in jwt_volume["secret"]["items"]] == ["public.pem"]

    # Draining WebSockets needs time: a preStop delay and a longer grace period.
    assert "preStop" in container["lifecycle"]
    grace = pod["terminationGracePeriodSeconds"]
    assert grace >= 60
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] < grace

    services = of_kind(docs, "Service")
    assert services["gateway"]["spec"]["type"] == "ClusterIP"
    assert services["gateway-headless"]["spec"]["clusterIP"] == "None"
    for name in ("gateway", "gateway-headless"):
        ports = {p["port"] for p in services[name]["spec"]["ports"]}
        assert GATEWAY_WS_PORT in ports, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_metrics_use_the_ops_port(overlay: str) -> None:
    docs = render(overlay)
    deployments = of_kind(docs, "Deployment")
    config = config_map(docs, "chatmesh-config")["data"]
    assert config["CHATMESH_OPS_LISTEN"] == f"0.0.0.0:{OPS_PORT}"
    for name in MESH_SERVICES:
        template = deployments[name]["spec"]["template"]
        container = one_container(deployments[name])
        assert OPS_PORT_SPEC in container["ports"], name
        assert "CHATMESH_OPS_LISTEN" not in _env(container), name
        assert template["metadata"]["annotations"] == SCRAPE_ANNOTATIONS, name
        assert _http_probe(container, "readinessProbe") == ("/readyz", "ops"), name
        # Waiting for a store is unready, not dead: neither liveness nor the
        # startup probe (which stands in for liveness until it passes) may
        # depend on one.
        assert _http_probe(container, "livenessProbe") == ("/healthz", "ops"), name
        assert _http_probe(container, "startupProbe") == ("/healthz", "ops"), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_all_workloads_read_shared_config_and_secrets(overlay: str) -> None:
    docs = render(overlay)
    config_name = config_map(docs, "chatmesh-config")["metadata"]["name"]
    secrets = of_kind(docs, "Secret")
    for name in [*GRPC_SERVICES, "fanout", "gateway"]:
        env_from = one_container(of_kind(docs, "Deployment")[name])["envFrom"]
        # The Secret comes last so that it can override any ConfigMap key.
        assert env_from[0] == {"configMapRef": {"name": config_name}}, name
        secret_name = env_from[1]["secretRef"]["name"]
        assert len(env_from) == 2
        if overlay in IN_NAMESPACE_STORES:
            assert secret_name in secrets, f"{name} references missing Secret {secret_name}"
        else:
            assert secret_name == "chatmesh-secrets"
    assert CONFIG_KEYS <= set(config_map(docs, "chatmesh-config")["data"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_process_connects_to_redis_as_itself(overlay: str) -> None:
    # An env entry, so it wins over the ConfigMap's address without
    # credentials; test_redis_acl.py checks the dev users themselves.
    docs = render(overlay)
    deployments = of_kind(docs, "Deployment")
    users = redis_acl.service_rules("")
    for name in MESH_SERVICES:
        env = _env(one_container(deployments[name]))
        if name not in users:
            # Uses no Redis: no credentials (the ConfigMap's bare address aside).
            assert "CHATMESH_REDIS_URL" not in env, name
            continue
        ref = env["CHATMESH_REDIS_URL"]["valueFrom"]
        secret = ref["secretKeyRef"]
        assert secret["key"] == "CHATMESH_REDIS_URL", name
        assert not secret.get("optional"), name
        if overlay in IN_NAMESPACE_STORES:
            assert secret["name"] in of_kind(docs, "Secret"), name
            assert secret["name"].startswith(f"redis-{name}-"), name
        else:
            assert secret["name"] == f"redis-{name}", name
    if overlay in IN_NAMESPACE_STORES:
        credentials = {
            name.rsplit("-", 1)[0].removeprefix("redis-")
            for name in of_kind(docs, "Secret")
            if name.startswith("redis-") and not name.startswith("redis-acl-")
        }
        assert credentials == set(users)


def test_no_secret_material_outside_dev() -> None:
    for overlay in ("base", "prod"):
        assert not of_kind(render(overlay), "Secret"), overlay


# --- mesh identities -----------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_cert_manager_resources_are_well_formed(overlay: str) -> None:
    docs = render(overlay)
    for doc in docs:
        if doc["apiVersion"].split("/")[0] == "cert-manager.io":
            assert _is_cert_manager(doc), f"{doc['apiVersion']} {doc['kind']} is not checked"
    issuers = {
        d["metadata"]["name"]: d for d in docs if _is_cert_manager(d) and d["kind"] == "Issuer"
    }
    certificates = of_kind(docs, "Certificate")
    ca_secrets = {c["spec"]["secretName"] for c in certificates.values() if c["spec"].get("isCA")}

    for name, issuer in issuers.items():
        (issuer_type,) = issuer["spec"]  # exactly one way of signing
        assert issuer_type in ISSUER_TYPES, name
        if issuer_type == "ca":
            assert issuer["spec"]["ca"]["secretName"] in ca_secrets, name

    secret_names = [c["spec"]["secretName"] for c in certificates.values()]
    assert len(secret_names) == len(set(secret_names)), "two Certificates write one Secret"
    for name, certificate in certificates.items():
        spec = certificate["spec"]
        assert set(spec) <= CERTIFICATE_FIELDS, f"{name}: {set(spec) - CERTIFICATE_FIELDS}"
        assert spec["secretName"], name
        assert CERTIFICATE_IDENTITY_FIELDS & set(spec), f"{name} names nothing"
        ref = spec["issuerRef"]
        assert set(ref) <= {"name", "kind", "group"}, name
        assert (ref.get("group"), ref.get("kind")) == ("cert-manager.io", "Issuer"), name
        assert ref["name"] in issuers, f"{name}: no Issuer {ref['name']}"
        key = spec["privateKey"]
        assert set(key) <= {"algorithm", "encoding", "rotationPolicy", "size"}, name
        assert key["algorithm"] in {"RSA", "ECDSA", "Ed25519"}, name
        assert key.get("encoding", "PKCS1") in {"PKCS1", "PKCS8"}, name
        assert key["rotationPolicy"] in {"Never", "Always"}, name
        if key["algorithm"] == "ECDSA":
            assert key["size"] in ECDSA_SIZES, name
        assert set(spec.get("usages", [])) <= KEY_USAGES, name
        # cert-manager refuses a lifetime under an hour or renewal at or past it.
        assert 1 <= _hours(spec["renewBefore"]) < _hours(spec["duration"]), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mesh_ca_bootstrap_chain(overlay: str) -> None:
    docs = render(overlay)
    issuers = {
        d["metadata"]["name"]: d for d in docs if _is_cert_manager(d) and d["kind"] == "Issuer"
    }
    certificates = of_kind(docs, "Certificate")
    assert issuers[SELF_SIGNED_ISSUER]["spec"] == {"selfSigned": {}}
    ca = certificates[MESH_CA]["spec"]
    assert ca["isCA"] is True
    assert ca["issuerRef"]["name"] == SELF_SIGNED_ISSUER
    assert (ca["privateKey"]["algorithm"], ca["privateKey"]["size"]) == ("ECDSA", 256)
    # A new CA key would not verify the certificates signed by the old one,
    # which services keep presenting until each renews.
    assert ca["privateKey"]["rotationPolicy"] == "Never"
    assert issuers[MESH_ISSUER]["spec"] == {"ca": {"secretName": ca["secretName"]}}
    # Only the CA comes from the self-signed Issuer.
    self_signed = [
        name
        for name, c in certificates.items()
        if c["spec"]["issuerRef"]["name"] == SELF_SIGNED_ISSUER and c["spec"].get("isCA")
    ]
    assert self_signed == [MESH_CA]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_its_mesh_identity(overlay: str) -> None:
    certificates = of_kind(render(overlay), "Certificate")
    for service in MESH_SERVICES:
        spec = certificates[f"mesh-{service}"]["spec"]
        assert spec["secretName"] == f"mesh-{service}"
        assert spec["issuerRef"]["name"] == MESH_ISSUER
        # Servers authorize callers by the URI, callers verify servers by name.
        assert spec["uris"] == [Principal.service(service).uri]
        assert sorted(spec["dnsNames"]) == sorted(service_dns_names(service))
        assert {"server auth", "client auth"} <= set(spec["usages"])
        assert (spec["privateKey"]["algorithm"], spec["privateKey"]["size"]) == ("ECDSA", 256)
        assert spec["privateKey"]["rotationPolicy"] == "Always"
        assert not spec.get("isCA")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mesh_ca_signs_only_mesh_identities(overlay: str) -> None:
    # Anything this CA signs can open a mesh connection; each of its
    # certificates must name exactly one service or internal client.
    certificates = of_kind(render(overlay), "Certificate")
    issued = {
        name: c for name, c in certificates.items() if c["spec"]["issuerRef"]["name"] == MESH_ISSUER
    }
    principals = {name: _mesh_identity(c) for name, c in issued.items()}
    assert sorted(p.name for p in principals.values() if p.kind == Principal.SERVICE) == sorted(
        MESH_SERVICES
    )
    for name, principal in principals.items():
        assert name == f"mesh-{principal.name}" or name == f"mesh-client-{principal.name}", name
        if principal.kind == Principal.CLIENT:
            spec = issued[name]["spec"]
            assert name == f"mesh-client-{principal.name}"
            assert spec["secretName"] == name
            # Internal clients never serve: no names to be verified by.
            assert not spec.get("dnsNames") and not spec.get("ipAddresses"), name
            assert "client auth" in spec["usages"] and "server auth" not in spec["usages"], name
            assert (spec["privateKey"]["algorithm"], spec["privateKey"]["size"]) == ("ECDSA", 256)
    assert Principal.client("ops") in principals.values()
    assert all(
        uri.startswith(f"spiffe://{TRUST_DOMAIN}/")
        for c in issued.values()
        for uri in c["spec"]["uris"]
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_process_mounts_its_own_mesh_identity(overlay: str) -> None:
    docs = render(overlay)
    deployments = of_kind(docs, "Deployment")
    by_secret = {c["spec"]["secretName"]: c for c in of_kind(docs, "Certificate").values()}
    assert set(MESH_SERVICES) <= set(deployments)
    for name in MESH_SERVICES:
        pod = deployments[name]["spec"]["template"]["spec"]
        container = one_container(deployments[name])
        assert _env(container)["CHATMESH_MESH_TLS_DIR"]["value"] == MESH_TLS_DIR, name
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == MESH_TLS_DIR]
        assert mount["readOnly"] is True, name
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        secret = volume["secret"]
        # The whole Secret: tls.crt, tls.key and ca.crt under their own names.
        assert "items" not in secret, name
        assert _mesh_identity(by_secret[secret["secretName"]]) == Principal.service(name)
        # Readable by the process through its group, by nobody else.
        mode = secret["defaultMode"]
        assert mode & 0o040 and not mode & 0o007, f"{name}: mode {mode:o}"
        security = pod["securityContext"]
        assert security["fsGroup"] == security["runAsGroup"], name
        # The schema migration talks to the stores only.
        for init in pod.get("initContainers", []):
            assert "CHATMESH_MESH_TLS_DIR" not in _env(init), f"{name}/{init['name']}"
            assert not init.get("volumeMounts"), f"{name}/{init['name']}"
    mesh_secrets = {
        secret for secret, c in by_secret.items() if c["spec"]["issuerRef"]["name"] == MESH_ISSUER
    }
    for name in set(deployments) - set(MESH_SERVICES):
        pod = deployments[name]["spec"]["template"]["spec"]
        secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert not secrets & mesh_secrets, f"{name} holds a mesh identity"


# --- disruption and scaling ----------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget(overlay: str) -> None:
    docs = render(overlay)
    budgets = of_kind(docs, "PodDisruptionBudget").values()
    for name, deployment in of_kind(docs, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [
            b for b in budgets if _labels_match(b["spec"]["selector"]["matchLabels"], labels)
        ]
        assert len(matching) == 1, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscalers_own_replicas(overlay: str) -> None:
    docs = render(overlay)
    deployments = of_kind(docs, "Deployment")
    autoscalers = of_kind(docs, "HorizontalPodAutoscaler")
    assert set(autoscalers) == {"gateway", "msgsvc"}
    for name, hpa in autoscalers.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        # A replica count in the Deployment would fight the autoscaler on apply.
        assert "replicas" not in deployments[name]["spec"], name
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


# --- edge ----------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_edge_runs_the_checked_in_envoy_config(overlay: str) -> None:
    docs = render(overlay)
    edge = of_kind(docs, "Deployment")["edge"]
    container = one_container(edge)
    assert container["image"] == "envoyproxy/envoy:v1.40-latest"
    envoy_config = config_map(docs, "edge-envoy")
    assert envoy_config["data"]["envoy.yaml"] == edge_config.render_k8s(EDGE_CONFIG[overlay])
    (volume,) = [v for v in edge["spec"]["template"]["spec"]["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == envoy_config["metadata"]["name"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    args = container["args"]
    assert args[args.index("--config-path") + 1] == f"{mount['mountPath']}/envoy.yaml"

    # Service port -> container port, through the port names.
    service = of_kind(docs, "Service")["edge"]
    assert service["spec"]["type"] == "LoadBalancer"
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    routed = {p["port"]: container_ports[p["targetPort"]] for p in service["spec"]["ports"]}
    assert routed == {EDGE_SERVICE_PORTS[port]: port for port in EDGE_PUBLIC_PORTS[overlay]}
    assert set(container_ports.values()) == EDGE_PUBLIC_PORTS[overlay] | {EDGE_METRICS_PORT}


@pytest.mark.parametrize("overlay", ["dev", MULTINODE, "prod"])
def test_edge_certificate(overlay: str) -> None:
    docs = render(overlay)
    edge = of_kind(docs, "Deployment")["edge"]
    pod = edge["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "edge-tls"]
    (mount,) = [m for m in one_container(edge)["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    # The key readable by Envoy's group only.
    mode = volume["secret"]["defaultMode"]
    assert mode & 0o040 and not mode & 0o007, f"mode {mode:o}"
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]

    certificates = of_kind(docs, "Certificate")
    if overlay == "prod":
        # The public hostname's certificate is the operator's (k8s/README.md).
        assert "edge-tls" not in {c["spec"]["secretName"] for c in certificates.values()}
        return
    spec = certificates["edge-tls"]["spec"]
    assert spec["secretName"] == "edge-tls"
    assert "server auth" in spec["usages"] and "client auth" not in spec["usages"]
    assert spec["issuerRef"]["name"] == SELF_SIGNED_ISSUER
    assert "localhost" in spec["dnsNames"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_select_existing_pods_and_ports(overlay: str) -> None:
    docs = render(overlay)
    workloads = [*of_kind(docs, "Deployment").values(), *of_kind(docs, "StatefulSet").values()]
    for name, service in of_kind(docs, "Service").items():
        selector = service["spec"]["selector"]
        selected = [
            w
            for w in workloads
            if _labels_match(selector, w["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(selected) == 1, name
        port_names = {
            p["name"]
            for c in selected[0]["spec"]["template"]["spec"]["containers"]
            for p in c["ports"]
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, f"{name}: {port['targetPort']}"


# --- network policies ----------------------------------------------------------------

# An allowed connection as the policies state it: (direction, the workload the
# policy selects, the peer, port, protocol). Peers inside the namespace are
# "pod:<name>"; others are namespaces by label, anywhere, or address blocks.
Edge = tuple[str, str, str, int, str]
DNS_PEER = "ns:kubernetes.io/metadata.name=kube-system"
MONITORING_PEER = "ns:chatmesh.io/monitoring=true"
INTERNAL_CLIENT_PEER = "ns:chatmesh.io/internal-client=true"
ANYWHERE = "anywhere"
ADDRESS_BLOCK = "address block"  # the external stores' CIDRs, checked on their own
# Every public address: the whole space but the private and shared ranges
# (pods, Services, stores) and link-local (cloud instance metadata).
INTERNET = "internet"
NOT_INTERNET = {
    "0.0.0.0/0": {
        "10.0.0.0/8",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
    },
    "::/0": {"fc00::/7", "fe80::/10"},
}
HTTPS_PORT = 443

# The call graph inside the namespace: caller, callee, the callee's port.
CALLS = {
    ("edge", "gateway", GATEWAY_WS_PORT),
    ("gateway", "msgsvc", GRPC_SERVICES["msgsvc"]),
    ("gateway", "sessionsvc", GRPC_SERVICES["sessionsvc"]),
    ("gateway", "presencesvc", GRPC_SERVICES["presencesvc"]),
    ("msgsvc", "sessionsvc", GRPC_SERVICES["sessionsvc"]),
    ("fanout", "sessionsvc", GRPC_SERVICES["sessionsvc"]),
    ("notifysvc", "sessionsvc", GRPC_SERVICES["sessionsvc"]),
}
# Calls out of the cluster: the push providers, over HTTPS.
EXTERNAL_CALLS = {("notifysvc", INTERNET, HTTPS_PORT)}
# Internal teams' tools call the public internal API (chatmesh/mesh/policy.py).
INTERNAL_API = {("msgsvc", GRPC_SERVICES["msgsvc"]), ("presencesvc", GRPC_SERVICES["presencesvc"])}
MESSAGE_STORES = {"redis", "cassandra", "postgres", "kafka"}
# The object store, by the name of its dev workload (any S3 in prod).
OBJECT_STORE = "seaweedfs"
STORES_USED = {
    "gateway": {"redis"},
    "msgsvc": MESSAGE_STORES | {OBJECT_STORE},
    "fanout": MESSAGE_STORES,
    "sessionsvc": {"redis"},
    "presencesvc": {"redis", "postgres"},
    "notifysvc": {"cassandra", "postgres", "kafka"},
}
EDGE_METRICS_PORT = 8081
EDGE_HTTP_PORT = 8080
EDGE_HTTPS_PORT = 8443
EDGE_SERVICE_PORTS = {EDGE_HTTP_PORT: 80, EDGE_HTTPS_PORT: 443}
EDGE_PUBLIC_PORTS = {
    "base": {EDGE_HTTP_PORT},
    "dev": {EDGE_HTTP_PORT, EDGE_HTTPS_PORT},
    "dev-multinode": {EDGE_HTTP_PORT, EDGE_HTTPS_PORT},
    "prod": {EDGE_HTTPS_PORT},
}
# Whose Envoy config each overlay serves: dev-multinode keeps dev's edge.
EDGE_CONFIG = {"base": "base", "dev": "dev", "dev-multinode": "dev", "prod": "prod"}
# The nodes of each multi-node store reach one another on these ports:
# Cassandra's gossip and streaming; Kafka's replication and controller
# quorum; Redis's replication and cluster bus.
PEER_PORTS = {"cassandra": {7000}, "kafka": {9092, 9093}, "redis": {6379, 16379}}
# The Job that forms the Redis Cluster, on every node's client port.
REDIS_CLUSTER_JOB = "redis-cluster-create"


def _selects(selector: Resource, labels: dict[str, str]) -> bool:
    if not _labels_match(selector.get("matchLabels", {}), labels):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def _workload_labels(docs: tuple[Resource, ...]) -> dict[str, dict[str, str]]:
    workloads = {
        **of_kind(docs, "Deployment"),
        **of_kind(docs, "StatefulSet"),
        **of_kind(docs, "Job"),
    }
    return {name: w["spec"]["template"]["metadata"]["labels"] for name, w in workloads.items()}


def _peers(peer: Resource, pods: dict[str, dict[str, str]], where: str) -> list[str]:
    if "ipBlock" in peer:
        assert set(peer) == {"ipBlock"}, where
        block = peer["ipBlock"]
        if block["cidr"] in NOT_INTERNET:
            excluded = NOT_INTERNET[block["cidr"]]
            assert excluded <= set(block.get("except", [])), f"{where}: {block}"
            return [INTERNET]
        return [ADDRESS_BLOCK]
    if "namespaceSelector" in peer:
        # A pod selector beside it would narrow the namespaces' pods; no
        # policy here needs one, so the check stays simple.
        assert set(peer) == {"namespaceSelector"}, where
        selector = peer["namespaceSelector"]
        assert set(selector) == {"matchLabels"} and selector["matchLabels"], f"{where}: {selector}"
        return ["ns:" + ",".join(f"{k}={v}" for k, v in sorted(selector["matchLabels"].items()))]
    assert set(peer) == {"podSelector"}, where
    selected = [name for name, labels in pods.items() if _selects(peer["podSelector"], labels)]
    assert selected, f"{where}: {peer['podSelector']} selects no pod"
    return [f"pod:{name}" for name in selected]


def _policy_edges(docs: tuple[Resource, ...]) -> set[Edge]:
    pods = _workload_labels(docs)
    edges: set[Edge] = set()
    for name, policy in of_kind(docs, "NetworkPolicy").items():
        spec = policy["spec"]
        targets = [pod for pod, labels in pods.items() if _selects(spec["podSelector"], labels)]
        assert targets, f"NetworkPolicy/{name} selects no pod"
        for direction, section, peer_key, policy_type in (
            ("in", "ingress", "from", "Ingress"),
            ("out", "egress", "to", "Egress"),
        ):
            rules = spec.get(section, [])
            if rules:
                # Without its type listed a section is ignored (or, for
                # egress, the type is not inferred): say it outright.
                assert policy_type in spec["policyTypes"], f"NetworkPolicy/{name}"
            for i, rule in enumerate(rules):
                where = f"NetworkPolicy/{name} {section}[{i}]"
                # A rule without ports opens every port.
                assert rule.get("ports"), where
                peers = [p for peer in rule.get(peer_key, []) for p in _peers(peer, pods, where)]
                for target in targets:
                    for peer in peers or [ANYWHERE]:
                        for port in rule["ports"]:
                            assert isinstance(port["port"], int) and "endPort" not in port, where
                            protocol = port.get("protocol", "TCP")
                            edges.add((direction, target, peer, port["port"], protocol))
    return edges


def _store_ports(config: dict[str, str]) -> dict[str, int]:
    (kafka_port,) = {
        int(a.rsplit(":", 1)[1]) for a in config["CHATMESH_KAFKA_BOOTSTRAP"].split(",")
    }
    redis_port = urlsplit(config["CHATMESH_REDIS_URL"]).port
    postgres_port = urlsplit(config["CHATMESH_PG_DSN"]).port
    assert redis_port and postgres_port
    s3 = urlsplit(config["CHATMESH_S3_ENDPOINT"])
    return {
        "redis": redis_port,
        "postgres": postgres_port,
        "cassandra": int(config["CHATMESH_CASSANDRA_PORT"]),
        "kafka": kafka_port,
        OBJECT_STORE: s3.port or {"http": 80, "https": 443}[s3.scheme],
    }


def _allowed_edges(overlay: str, docs: tuple[Resource, ...]) -> set[Edge]:
    edges: set[Edge] = set()
    for workload in _workload_labels(docs):
        edges.add(("out", workload, DNS_PEER, 53, "UDP"))
        edges.add(("out", workload, DNS_PEER, 53, "TCP"))
        edges.add(("in", workload, MONITORING_PEER, OPS_PORT, "TCP"))
    edges.add(("in", "edge", MONITORING_PEER, EDGE_METRICS_PORT, "TCP"))
    edges |= {("in", "edge", ANYWHERE, port, "TCP") for port in EDGE_PUBLIC_PORTS[overlay]}
    for caller, callee, port in CALLS:
        edges.add(("out", caller, f"pod:{callee}", port, "TCP"))
        edges.add(("in", callee, f"pod:{caller}", port, "TCP"))
    edges |= {("in", callee, INTERNAL_CLIENT_PEER, port, "TCP") for callee, port in INTERNAL_API}
    edges |= {("out", caller, peer, port, "TCP") for caller, peer, port in EXTERNAL_CALLS}
    if overlay == "base":
        return edges  # the overlays say where the stores are
    store_ports = _store_ports(config_map(docs, "chatmesh-config")["data"])
    for client, stores in STORES_USED.items():
        for store in stores:
            port = store_ports[store]
            if overlay in IN_NAMESPACE_STORES:
                edges.add(("out", client, f"pod:{store}", port, "TCP"))
                edges.add(("in", store, f"pod:{client}", port, "TCP"))
            else:
                edges.add(("out", client, ADDRESS_BLOCK, port, "TCP"))
    if overlay == MULTINODE:
        for store, ports in PEER_PORTS.items():
            for port in ports:
                edges.add(("out", store, f"pod:{store}", port, "TCP"))
                edges.add(("in", store, f"pod:{store}", port, "TCP"))
        redis_port = store_ports["redis"]
        edges.add(("out", REDIS_CLUSTER_JOB, "pod:redis", redis_port, "TCP"))
        edges.add(("in", "redis", f"pod:{REDIS_CLUSTER_JOB}", redis_port, "TCP"))
    return edges


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default(overlay: str) -> None:
    policies = of_kind(render(overlay), "NetworkPolicy").values()
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and "ingress" not in p["spec"]
        and "egress" not in p["spec"]
    ]
    assert [sorted(p["spec"]["policyTypes"]) for p in deny] == [["Egress", "Ingress"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_the_call_graph(overlay: str) -> None:
    docs = render(overlay)
    actual = _policy_edges(docs)
    allowed = _allowed_edges(overlay, docs)
    holes = sorted(actual - allowed)
    assert not holes, "allowed by a policy, not in the call graph:\n" + "\n".join(map(str, holes))
    missing = sorted(allowed - actual)
    assert not missing, "in the call graph, blocked:\n" + "\n".join(map(str, missing))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_external_stores_are_reached_by_address_in_prod_only(overlay: str) -> None:
    blocks = [
        peer["ipBlock"]
        for policy in of_kind(render(overlay), "NetworkPolicy").values()
        for rule in policy["spec"].get("egress", [])
        for peer in rule.get("to", [])
        if "ipBlock" in peer and peer["ipBlock"]["cidr"] not in NOT_INTERNET
    ]
    if overlay != "prod":
        assert not blocks
        return
    assert blocks
    for block in blocks:
        network = ipaddress.ip_network(block["cidr"])  # strict: no host bits set
        # A block wider than a /8 is the internet, not a store's subnet.
        assert network.prefixlen >= 8, block
        assert "except" not in block, block


# --- overlays ------------------------------------------------------------------------


def test_dev_runs_single_node_datastores() -> None:
    docs = render("dev")
    statefulsets = of_kind(docs, "StatefulSet")
    assert set(statefulsets) == {"cassandra", "redis", "postgres", "kafka", "seaweedfs"}
    images = {name: one_container(s)["image"] for name, s in statefulsets.items()}
    assert images == {
        "cassandra": "cassandra:5.0",
        "redis": "redis:7",
        "postgres": "postgres:15",
        "kafka": "apache/kafka:4.1.1",
        "seaweedfs": "chrislusf/seaweedfs:4.53",
    }
    for name, statefulset in statefulsets.items():
        assert statefulset["spec"]["replicas"] == 1, name
        assert statefulset["spec"]["volumeClaimTemplates"], name
        assert statefulset["spec"]["serviceName"] in of_kind(docs, "Service"), name
    cassandra_env = _env(one_container(statefulsets["cassandra"]))
    assert cassandra_env["MAX_HEAP_SIZE"]["value"] == "1G"

    # Kafka in KRaft mode, advertising the Service the clients bootstrap from.
    kafka = one_container(statefulsets["kafka"])
    kafka_env = {name: e["value"] for name, e in _env(kafka).items()}
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka_env["CLUSTER_ID"]
    assert kafka_env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert kafka_env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert kafka_env["KAFKA_ADVERTISED_LISTENERS"] == (
        "PLAINTEXT://kafka.chatmesh.svc.cluster.local:9092"
    )
    (data_mount,) = kafka["volumeMounts"]
    assert data_mount["mountPath"] == kafka_env["KAFKA_LOG_DIRS"]
    # A subdirectory of the volume: Kafka refuses a log dir holding lost+found.
    assert data_mount["subPath"]
    kafka_service = of_kind(docs, "Service")["kafka"]
    assert [(p["name"], p["port"]) for p in kafka_service["spec"]["ports"]] == [("kafka", 9092)]

    config = config_map(docs, "chatmesh-config")["data"]
    assert config["CHATMESH_CASSANDRA_CONSISTENCY"] == "ONE"
    assert "'replication_factor': 1" in config["CHATMESH_CASSANDRA_REPLICATION"]
    assert config["CHATMESH_CASSANDRA_HOSTS"] == "cassandra.chatmesh.svc.cluster.local"
    assert config["CHATMESH_REDIS_URL"].startswith("redis://redis.chatmesh.svc.cluster.local:")
    assert "@postgres.chatmesh.svc.cluster.local:" in config["CHATMESH_PG_DSN"]
    assert config["CHATMESH_KAFKA_BOOTSTRAP"] == "kafka.chatmesh.svc.cluster.local:9092"
    # One broker: the message log cannot be replicated, nor the push jobs.
    assert config["CHATMESH_MESSAGE_TOPIC_REPLICATION"] == "1"
    assert config.get("CHATMESH_PUSH_TOPIC_REPLICATION", "1") == "1"

    for name, deployment in of_kind(docs, "Deployment").items():
        assert deployment["spec"].get("replicas", 1) == 1, name
    for name, hpa in of_kind(docs, "HorizontalPodAutoscaler").items():
        assert hpa["spec"]["minReplicas"] == 1, name


def test_prod_uses_external_clusters_at_quorum() -> None:
    docs = render("prod")
    assert not of_kind(docs, "StatefulSet")
    config = config_map(docs, "chatmesh-config")["data"]
    assert config["CHATMESH_CASSANDRA_CONSISTENCY"] == "LOCAL_QUORUM"
    assert "'dc1': 3" in config["CHATMESH_CASSANDRA_REPLICATION"]
    assert len(config["CHATMESH_CASSANDRA_HOSTS"].split(",")) >= 3
    assert len(config["CHATMESH_KAFKA_BOOTSTRAP"].split(",")) >= 3
    assert config["CHATMESH_MESSAGE_TOPIC_REPLICATION"] == "3"
    assert config.get("CHATMESH_PUSH_TOPIC_REPLICATION", "3") == "3"
    for key in (
        "CHATMESH_REDIS_URL",
        "CHATMESH_PG_DSN",
        "CHATMESH_CASSANDRA_HOSTS",
        "CHATMESH_KAFKA_BOOTSTRAP",
        "CHATMESH_S3_ENDPOINT",
        "CHATMESH_S3_PUBLIC_ENDPOINT",
    ):
        assert ".svc.cluster.local" not in config[key], key
    # Media travels to and from the store encrypted.
    for key in ("CHATMESH_S3_ENDPOINT", "CHATMESH_S3_PUBLIC_ENDPOINT"):
        assert urlsplit(config[key]).scheme == "https", key

    for name, deployment in of_kind(docs, "Deployment").items():
        if "replicas" in deployment["spec"]:
            assert deployment["spec"]["replicas"] == 3, name
    autoscalers = of_kind(docs, "HorizontalPodAutoscaler")
    dev_autoscalers = of_kind(render("dev"), "HorizontalPodAutoscaler")
    for name, hpa in autoscalers.items():
        assert hpa["spec"]["minReplicas"] == 3, name
        assert hpa["spec"]["maxReplicas"] > dev_autoscalers[name]["spec"]["maxReplicas"], name


# --- dev-multinode -------------------------------------------------------------------

CLUSTER_DOMAIN = "chatmesh.svc.cluster.local"
# The stores dev-multinode reshapes, and how many nodes each runs: Redis as
# three primaries with one replica each.
MULTINODE_STORES = {"cassandra": 3, "kafka": 3, "redis": 6}
# The settings it changes from dev's; all the others are dev's.
MULTINODE_CONFIG = {
    "CHATMESH_CASSANDRA_HOSTS",
    "CHATMESH_CASSANDRA_PORT",
    "CHATMESH_CASSANDRA_CONSISTENCY",
    "CHATMESH_CASSANDRA_REPLICATION",
    "CHATMESH_CASSANDRA_LOCAL_DC",
    "CHATMESH_REDIS_URL",
    "CHATMESH_REDIS_CLUSTER",
    "CHATMESH_KAFKA_BOOTSTRAP",
    "CHATMESH_MESSAGE_TOPIC_REPLICATION",
}
# What it adds: each store's peers Service and disruption budget, the
# policies between its nodes, and the Job that forms the Redis Cluster.
MULTINODE_ADDED = {
    *(("Service", f"{store}-peers") for store in MULTINODE_STORES),
    *(("PodDisruptionBudget", store) for store in MULTINODE_STORES),
    *(("NetworkPolicy", f"{store}-peers") for store in MULTINODE_STORES),
    ("NetworkPolicy", REDIS_CLUSTER_JOB),
    ("Job", REDIS_CLUSTER_JOB),
}


def _unhashed(docs: tuple[Resource, ...]) -> dict[tuple[str, str], str]:
    """Each resource as JSON by kind and name, generated ConfigMaps and
    Secrets named without their hash suffix (which differs wherever their
    contents do)."""
    generated = {
        name: name.rsplit("-", 1)[0]
        for kind in ("ConfigMap", "Secret")
        for name in of_kind(docs, kind)
    }
    pattern = re.compile("|".join(map(re.escape, sorted(generated, key=len, reverse=True))))

    def unhash(text: str) -> str:
        return pattern.sub(lambda match: generated[match.group()], text)

    return {
        (d["kind"], unhash(d["metadata"]["name"])): unhash(json.dumps(d, sort_keys=True))
        for d in docs
    }


def _pod_addresses(statefulset: Resource, port: int | None = None) -> list[str]:
    """Each pod's name under the StatefulSet's governing Service, in ordinal order."""
    name, spec = statefulset["metadata"]["name"], statefulset["spec"]
    suffix = f":{port}" if port is not None else ""
    return [
        f"{name}-{i}.{spec['serviceName']}.{CLUSTER_DOMAIN}{suffix}"
        for i in range(spec["replicas"])
    ]


def _values(container: Resource) -> dict[str, str]:
    """The container's env entries with a literal value."""
    return {name: e["value"] for name, e in _env(container).items() if "value" in e}


def _field_ref(container: Resource, name: str) -> str:
    return str(_env(container)[name]["valueFrom"]["fieldRef"]["fieldPath"])


def _redis_options(container: Resource) -> dict[str, str]:
    """redis-server's command-line options, after its config file."""
    args = container["args"]
    assert args[0] == "redis-server" and not args[1].startswith("--")
    options = args[2:]
    assert len(options) % 2 == 0 and all(o.startswith("--") for o in options[::2]), options
    return dict(zip(options[::2], options[1::2], strict=True))


def test_dev_multinode_is_dev_with_multinode_stores() -> None:
    dev, multinode = _unhashed(render("dev")), _unhashed(render(MULTINODE))
    reshaped = {("StatefulSet", store) for store in MULTINODE_STORES}
    merged = {("ConfigMap", "chatmesh-config"), ("Secret", "redis-acl")}
    for key, resource in dev.items():
        if key not in reshaped | merged:
            assert multinode[key] == resource, key
    assert set(multinode) - set(dev) == MULTINODE_ADDED

    dev_docs, docs = render("dev"), render(MULTINODE)
    dev_config = config_map(dev_docs, "chatmesh-config")["data"]
    config = config_map(docs, "chatmesh-config")["data"]
    changed = {k for k in config.keys() | dev_config.keys() if config.get(k) != dev_config.get(k)}
    assert changed <= MULTINODE_CONFIG, changed - MULTINODE_CONFIG

    # The services' Redis users are dev's, the same on every node; the
    # cluster's own users come beside them.
    def acl_secret(docs: tuple[Resource, ...]) -> dict[str, str]:
        (name,) = [n for n in of_kind(docs, "Secret") if n.startswith("redis-acl-")]
        return {key: secret_value(docs, name, key) for key in of_kind(docs, "Secret")[name]["data"]}

    dev_acl, acl = acl_secret(dev_docs), acl_secret(docs)
    assert {key: acl[key] for key in dev_acl} == dev_acl
    assert set(acl) - set(dev_acl) == {"cluster.conf", "cluster-admin-password"}


def test_dev_multinode_stores_run_replicated() -> None:
    docs = render(MULTINODE)
    statefulsets = of_kind(docs, "StatefulSet")
    dev_statefulsets = of_kind(render("dev"), "StatefulSet")
    services = of_kind(docs, "Service")
    budgets = of_kind(docs, "PodDisruptionBudget").values()
    assert set(statefulsets) == set(dev_statefulsets)
    for name, statefulset in statefulsets.items():
        spec = statefulset["spec"]
        assert spec["replicas"] == MULTINODE_STORES.get(name, 1), name
        # The images, and their conventions, of the single-node stores.
        assert one_container(statefulset)["image"] == one_container(dev_statefulsets[name])["image"]
        assert spec["volumeClaimTemplates"], name
        if name not in MULTINODE_STORES:
            continue
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"]["labels"]
        ports = {p["name"]: p["containerPort"] for p in one_container(statefulset)["ports"]}

        # Peers find one another by name from the start, before they are ready.
        peers = services[spec["serviceName"]]["spec"]
        assert peers["clusterIP"] == "None" and peers["publishNotReadyAddresses"] is True, name
        assert _labels_match(peers["selector"], labels), name
        assert {p["targetPort"] for p in peers["ports"]} == set(ports), name
        assert {ports[p["targetPort"]] for p in peers["ports"]} >= PEER_PORTS[name], name

        # One node down at a time.
        (budget,) = [
            b for b in budgets if _labels_match(b["spec"]["selector"]["matchLabels"], labels)
        ]
        assert budget["spec"]["maxUnavailable"] == 1, name
        assert "minAvailable" not in budget["spec"], name

        # Spread over machines where there are several, all on one otherwise.
        anti = pod["affinity"]["podAntiAffinity"]
        assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti, name
        (preferred,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        term = preferred["podAffinityTerm"]
        assert term["topologyKey"] == "kubernetes.io/hostname", name
        assert _labels_match(term["labelSelector"]["matchLabels"], labels), name

    # Cassandra nodes join one at a time; Kafka's controllers and Redis's
    # nodes must start together to find one another.
    policies = {
        name: statefulsets[name]["spec"]["podManagementPolicy"] for name in MULTINODE_STORES
    }
    assert policies == {"cassandra": "OrderedReady", "kafka": "Parallel", "redis": "Parallel"}


def test_dev_multinode_cassandra_ring_at_local_quorum() -> None:
    docs = render(MULTINODE)
    cassandra = of_kind(docs, "StatefulSet")["cassandra"]
    container = one_container(cassandra)
    env = _values(container)
    config = config_map(docs, "chatmesh-config")["data"]

    assert config["CHATMESH_CASSANDRA_CONSISTENCY"] == "LOCAL_QUORUM"
    replication = ast.literal_eval(config["CHATMESH_CASSANDRA_REPLICATION"])
    datacenter = config["CHATMESH_CASSANDRA_LOCAL_DC"]
    assert datacenter == "datacenter1" == env["CASSANDRA_DC"]
    assert env["CASSANDRA_ENDPOINT_SNITCH"] == "GossipingPropertyFileSnitch"
    # Three replicas in the one datacenter: one per node.
    assert replication == {"class": "NetworkTopologyStrategy", datacenter: 3}
    assert replication[datacenter] == cassandra["spec"]["replicas"]
    assert env["MAX_HEAP_SIZE"] == "1G"

    # Seeds by their stable names; each node by its pod's current address.
    seeds = env["CASSANDRA_SEEDS"].split(",")
    assert seeds == _pod_addresses(cassandra)[:2]
    assert _field_ref(container, "CASSANDRA_LISTEN_ADDRESS") == "status.podIP"

    # Ready once CQL answers, which it does only after the node has joined.
    assert container["readinessProbe"]["tcpSocket"]["port"] == "cql"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"cql": 9042, "intra-node": 7000}

    # The services' contact points: the Service of the ready nodes.
    service = of_kind(docs, "Service")[config["CHATMESH_CASSANDRA_HOSTS"].split(".")[0]]
    assert config["CHATMESH_CASSANDRA_HOSTS"] == f"cassandra.{CLUSTER_DOMAIN}"
    assert not service["spec"].get("publishNotReadyAddresses")
    assert _labels_match(
        service["spec"]["selector"], cassandra["spec"]["template"]["metadata"]["labels"]
    )
    assert [p["port"] for p in service["spec"]["ports"]] == [int(config["CHATMESH_CASSANDRA_PORT"])]


def test_dev_multinode_kafka_quorum_and_replication() -> None:
    docs = render(MULTINODE)
    kafka = of_kind(docs, "StatefulSet")["kafka"]
    container = one_container(kafka)
    env = _values(container)
    names = list(_env(container))
    config = config_map(docs, "chatmesh-config")["data"]

    # Each pod is a broker and a controller, node N being pod kafka-N.
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert (
        _field_ref(container, "KAFKA_NODE_ID") == "metadata.labels['apps.kubernetes.io/pod-index']"
    )
    voters = [f"{i}@{address}" for i, address in enumerate(_pod_addresses(kafka, 9093))]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == ",".join(voters)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])

    # Each broker advertises its own name; the services bootstrap from all.
    assert _field_ref(container, "POD_NAME") == "metadata.name"
    # The kubelet expands $(POD_NAME) only if it is defined before.
    assert names.index("POD_NAME") < names.index("KAFKA_ADVERTISED_LISTENERS")
    service = kafka["spec"]["serviceName"]
    assert env["KAFKA_ADVERTISED_LISTENERS"] == (
        f"PLAINTEXT://$(POD_NAME).{service}.{CLUSTER_DOMAIN}:9092"
    )
    assert config["CHATMESH_KAFKA_BOOTSTRAP"].split(",") == _pod_addresses(kafka, 9092)

    # Replicated three times, acks=all writes on two: one broker may be down,
    # and no out-of-sync replica ever leads.
    assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
    assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    for topic in ("OFFSETS_TOPIC", "TRANSACTION_STATE_LOG", "SHARE_COORDINATOR_STATE_TOPIC"):
        assert env[f"KAFKA_{topic}_REPLICATION_FACTOR"] == "3", topic
    for topic in ("TRANSACTION_STATE_LOG", "SHARE_COORDINATOR_STATE_TOPIC"):
        assert env[f"KAFKA_{topic}_MIN_ISR"] == "2", topic
    assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert config["CHATMESH_MESSAGE_TOPIC_REPLICATION"] == "3"
    assert config.get("CHATMESH_PUSH_TOPIC_REPLICATION", "3") == "3"
    assert int(config["CHATMESH_MESSAGE_TOPIC_REPLICATION"]) <= kafka["spec"]["replicas"]

    (data_mount,) = container["volumeMounts"]
    assert data_mount["mountPath"] == env["KAFKA_LOG_DIRS"] and data_mount["subPath"]


def test_dev_multinode_redis_cluster() -> None:
    docs = render(MULTINODE)
    redis = of_kind(docs, "StatefulSet")["redis"]
    pod = redis["spec"]["template"]["spec"]
    container = one_container(redis)
    options = _redis_options(container)
    names = list(_env(container))
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config = config_map(docs, "chatmesh-config")["data"]

    assert options["--cluster-enabled"] == "yes"
    # Durable as dev's Redis.
    assert (options["--appendonly"], options["--appendfsync"]) == ("yes", "everysec")
    # The node's identity on its volume, which outlives the pod.
    nodes_conf = options["--cluster-config-file"]
    assert nodes_conf.startswith(mounts["data"] + "/")
    assert {t["metadata"]["name"] for t in redis["spec"]["volumeClaimTemplates"]} == {"data"}
    # Announced by the pod's current address to its peers, and by its
    # stable name to clients.
    assert options["--cluster-announce-ip"] == "$(POD_IP)"
    assert _field_ref(container, "POD_IP") == "status.podIP"
    assert options["--cluster-announce-hostname"] == (
        f"$(POD_NAME).{redis['spec']['serviceName']}.{CLUSTER_DOMAIN}"
    )
    assert _field_ref(container, "POD_NAME") == "metadata.name"
    assert options["--cluster-preferred-endpoint-type"] == "hostname"
    assert options["--cluster-require-full-coverage"] == "no"
    # The kubelet expands $(NAME) in args only for variables it defines.
    referenced = set(re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", " ".join(container["args"])))
    assert referenced <= set(names), referenced - set(names)

    # Probed as dev's Redis is, by its probe user.
    dev_redis = one_container(of_kind(render("dev"), "StatefulSet")["redis"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe] == dev_redis[probe], probe
    assert _env(container)["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"]["key"] == "probe-password"

    # The services' users from dev's acl.conf, the cluster's from
    # cluster.conf: both files of the one mounted Secret.
    assert container["args"][1] == f"{mounts['acl']}/acl.conf"
    assert options["--include"] == f"{mounts['acl']}/cluster.conf"
    (acl,) = [v for v in pod["volumes"] if v["name"] == "acl"]
    assert [i["key"] for i in acl["secret"]["items"]] == ["acl.conf", "cluster.conf"]

    # The init container rewrites the same nodes.conf, on the same volume.
    (init,) = pod["initContainers"]
    assert init["image"] == container["image"]
    assert {m["name"]: m["mountPath"] for m in init["volumeMounts"]} == {"data": mounts["data"]}
    assert f"conf={nodes_conf}\n" in init["command"][-1]

    # The Job: every node of the StatefulSet, three primaries with a replica each.
    job = of_kind(docs, "Job")[REDIS_CLUSTER_JOB]
    job_container = one_container(job)
    job_env = _env(job_container)
    assert job_env["NODES"]["value"].split() == _pod_addresses(redis, 6379)
    script = job_container["command"][-1]
    assert "--cluster-replicas 1 --cluster-yes" in script
    assert redis["spec"]["replicas"] == 3 * (1 + 1)
    assert job_env["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"] == {
        "name": acl["secret"]["secretName"],
        "key": "cluster-admin-password",
    }
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    # Its template cannot change once created: it must go for a later apply.
    assert job["spec"]["ttlSecondsAfterFinished"] > 0

    # The services start from any ready node, as a cluster client.
    assert config["CHATMESH_REDIS_CLUSTER"] == "true"
    url = urlsplit(config["CHATMESH_REDIS_URL"])
    service = of_kind(docs, "Service")[str(url.hostname).split(".")[0]]
    assert url.hostname == f"redis.{CLUSTER_DOMAIN}"
    assert not service["spec"].get("publishNotReadyAddresses")
    assert _labels_match(
        service["spec"]["selector"], redis["spec"]["template"]["metadata"]["labels"]
    )
    for name in redis_acl.service_rules(""):
        secret = _env(one_container(of_kind(docs, "Deployment")[name]))["CHATMESH_REDIS_URL"]
        ref = secret["valueFrom"]["secretKeyRef"]
        service_url = urlsplit(secret_value(docs, ref["name"], ref["key"]))
        assert (service_url.hostname, service_url.port) == (url.hostname, url.port), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_msgsvc_applies_schemas_before_it_starts(overlay: str) -> None:
    msgsvc = of_kind(render(overlay), "Deployment")["msgsvc"]
    pod = msgsvc["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["command"] == ["python", "-m", "chatmesh", "migrate"]
    assert init["image"] == one_container(msgsvc)["image"]
    assert init["envFrom"] == one_container(msgsvc)["envFrom"]
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"cpu", "memory"} <= set(init["resources"]["limits"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_msgsvc_holds_the_object_store_keys(overlay: str) -> None:
    docs = render(overlay)
    deployments = of_kind(docs, "Deployment")
    config = config_map(docs, "chatmesh-config")["data"]
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", config["CHATMESH_S3_BUCKET"])
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        for container in [*pod["containers"], *pod.get("initContainers", [])]:
            env = _env(container)
            if name == "msgsvc" and container["name"] == "msgsvc":
                for key in S3_KEYS:
                    secret = env[key]["valueFrom"]["secretKeyRef"]
                    assert secret["key"] == key
                    assert not secret.get("optional")
                    if overlay in IN_NAMESPACE_STORES:
                        assert secret["name"].startswith(f"{S3_SECRET}-")
                        assert secret["name"] in of_kind(docs, "Secret")
                    else:
                        assert secret["name"] == S3_SECRET
            else:
                assert not set(S3_KEYS) & set(env), f"{name}/{container['name']}"


def test_dev_object_store_serves_msgsvc_its_bucket_only() -> None:
    docs = render("dev")
    secrets = {name.rsplit("-", 1)[0]: s for name, s in of_kind(docs, "Secret").items()}
    config = config_map(docs, "chatmesh-config")["data"]
    bucket = config["CHATMESH_S3_BUCKET"]
    store = of_kind(docs, "StatefulSet")[OBJECT_STORE]
    container = one_container(store)

    # The Service msgsvc is pointed at, on the port it names.
    endpoint = urlsplit(config["CHATMESH_S3_ENDPOINT"])
    assert endpoint.hostname == f"{OBJECT_STORE}.chatmesh.svc.cluster.local"
    service = of_kind(docs, "Service")[OBJECT_STORE]
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        (endpoint.port, "s3")
    ]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert f"-s3.port={ports['s3']}" in container["args"]
    assert "-s3.autoCreateBucket=false" in container["args"]

    # msgsvc's keys are an identity of the store's, limited to the bucket.
    def decoded(secret: Resource) -> dict[str, str]:
        return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}

    store_secret = decoded(secrets["seaweedfs-s3"])
    identities = {i["name"]: i for i in json.loads(store_secret["s3.json"])["identities"]}
    msgsvc_keys = decoded(secrets[S3_SECRET])
    (credentials,) = identities["msgsvc"]["credentials"]
    assert credentials == {
        "accessKey": msgsvc_keys["CHATMESH_S3_ACCESS_KEY_ID"],
        "secretKey": msgsvc_keys["CHATMESH_S3_SECRET_ACCESS_KEY"],
    }
    assert {action.split(":", 1)[1] for action in identities["msgsvc"]["actions"]} == {bucket}
    # The admin identity creates the bucket when the store starts.
    (admin,) = identities["admin"]["credentials"]
    assert admin == {
        "accessKey": store_secret["admin-access-key-id"],
        "secretKey": store_secret["admin-secret-access-key"],
    }
    env = _env(container)
    assert env["CHATMESH_S3_BUCKET"]["valueFrom"]["configMapKeyRef"] == {
        "name": config_map(docs, "chatmesh-config")["metadata"]["name"],
        "key": "CHATMESH_S3_BUCKET",
    }
    (script,) = container["lifecycle"]["postStart"]["exec"]["command"][2:]
    assert f"http://127.0.0.1:{ports['s3']}/$CHATMESH_S3_BUCKET" in script
