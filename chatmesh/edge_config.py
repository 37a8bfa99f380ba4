"""Renders the chatmesh edge Envoy configuration (Envoy 1.40, v3 API).

One builder produces every variant, so the local config and the Kubernetes
ones cannot drift apart, and every client listener, plaintext or TLS, is
built by the same function:

* ``render_local(...)``: static gateway endpoints on one host, for running the
  whole stack on a workstation or in CI; with ``tls``, a second client
  listener that terminates TLS (``wss://``) next to the plaintext one, its
  certificate read from files at startup.
* ``render_k8s(overlay)``: gateways discovered through the headless Service
  ``gateway-headless`` by STRICT_DNS. ``base`` is plaintext only; ``dev`` adds
  a TLS listener; ``prod`` has only the TLS one. Both take their certificate
  through the file-based SDS resource ``k8s/components/edge-tls/edge-tls-sds.yaml``,
  which Envoy watches, so a renewed certificate is served without a restart.

Every Kubernetes variant is checked in (``CHECKED_IN``): base twice, as
``envoy/envoy.yaml`` (the reference copy) and ``k8s/base/edge/envoy.yaml``
(inside the kustomization root, because kustomize refuses to load files from
outside it), and each overlay's as ``k8s/overlays/<overlay>/edge/envoy.yaml``.
``python -m chatmesh.edge_config --write`` regenerates them all and
tests/deploy/test_envoy_config.py fails if any differs from this module.

Usage::

    python -m chatmesh.edge_config                      # local config, default ports
    python -m chatmesh.edge_config --listen-port 8080 --admin-port 9901 \\
        --gateway-port 8101 --gateway-port 8102
    python -m chatmesh.edge_config --tls-port 8443 --tls-dir .local/cluster/tls/edge
    python -m chatmesh.edge_config --k8s                # Kubernetes base variant
    python -m chatmesh.edge_config --k8s prod           # an overlay's variant
    python -m chatmesh.edge_config --write              # regenerate checked-in copies
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chatmesh.mesh.pki import CERT_FILE, KEY_FILE

REPO_ROOT = Path(__file__).resolve().parent.parent

GATEWAY_CLUSTER = "gateways"
# A local cluster's developer endpoints (chatmesh.devtools): the web client's
# files and dev tokens, on the edge's origin. Never in a Kubernetes variant.
WEB_CLUSTER = "devtools"
WEB_PREFIXES = ("/app", "/dev/")
# Failures that happen before a gateway accepted the upgrade: safe to retry.
# A 503 is a gateway declining the upgrade (full, draining, not ready yet).
RETRY_ON = "connect-failure,refused-stream,reset-before-request,retriable-status-codes"
RETRIABLE_STATUS_CODES = [503]
ADMIN_CLUSTER = "edge_admin"

K8S_GATEWAY_HOST = "gateway-headless.chatmesh.svc.cluster.local"
K8S_GATEWAY_PORT = 8100
K8S_LISTEN_PORT = 8080
K8S_ADMIN_PORT = 9901
K8S_PROBE_PORT = 8081
# Container port 8443 and Service port 443 come from k8s/components/edge-tls.
K8S_TLS_PORT = 8443
# The SDS resource ships in the edge-envoy ConfigMap, mounted at /etc/envoy
# (k8s/base/edge/edge.yaml), and names the secret the listener asks for.
K8S_SDS_PATH = "/etc/envoy/edge-tls-sds.yaml"
K8S_SDS_SECRET = "edge_tls"

# Per-connection buffer watermark, on both sides of every WebSocket. It is
# flow control, not a frame limit: past it Envoy stops reading from the other
# side until this one drains, so a larger frame (a history page) still passes,
# in pieces. It is also how much Envoy reads from a socket at once, and what
# it may hold for a client that stops reading: at 1 MiB a stalled client
# could pin a megabyte on each side. 64 KiB is the client frame limit
# (gateway.edge.MAX_FRAME_BYTES); bench/README.md (connections) has the
# idle cost measured both ways.
CONNECTION_BUFFER_BYTES = 64 * 1024

# Gateways ping every 30 s, so a WebSocket is never idle for longer than that
# while both ends are alive. An hour of connection idleness only reaps keep-
# alive HTTP connections that carry no stream; five minutes of stream
# idleness (ten missed pings) reaps WebSockets whose peer vanished silently.
CONNECTION_IDLE_TIMEOUT = "3600s"
STREAM_IDLE_TIMEOUT = "300s"

# Envoy's default circuit breakers (1024 connections / requests per cluster)
# would cap the whole edge at 1024 concurrent WebSockets, since each upgraded
# stream pins one upstream HTTP/1.1 connection. Real back-pressure comes from
# the gateways' own connection limits and the overload manager below.
MAX_UPSTREAM_CONNECTIONS = 200_000
MAX_DOWNSTREAM_CONNECTIONS = 200_000
# One gateway's cap, which the gateway enforces too (CHATMESH_MAX_CONNECTIONS,
# gateway.admission): Envoy stops sending it upgrades beyond this and tries
# another gateway, instead of letting it refuse them one by one.
MAX_CONNECTIONS_PER_GATEWAY = 50_000

# TLS 1.0 and 1.1 are deprecated (RFC 8996).
TLS_MINIMUM_VERSION = "TLSv1_2"
# A WebSocket upgrade is an HTTP/1.1 request. Offering h2 would let a client
# negotiate a protocol its WebSocket cannot run over (that needs extended
# CONNECT, RFC 8441, which neither this edge nor the gateways are set up for).
TLS_ALPN = ["http/1.1"]

GENERATED_HEADER = (
    "# Chatmesh edge proxy configuration (Envoy 1.40, v3 API).\n"
    "# Generated by chatmesh/edge_config.py: edit that file, then run\n"
    "#   python -m chatmesh.edge_config --write\n"
    "# tests/deploy/test_envoy_config.py fails when this copy is stale.\n"
)


@dataclass(frozen=True, slots=True)
class EdgeTls:
    """A client listener that terminates TLS with the PEM files of its
    certificate (the chain, leaf first, and its key), read once at startup:
    enough where nothing renews a certificate under a running Envoy."""

    port: int
    cert_file: Path
    key_file: Path
    # Its traffic is counted apart from the plaintext listener's.
    stat_prefix: str = "edge_tls"

    @classmethod
    def from_dir(cls, port: int, directory: Path) -> EdgeTls:
        """Files in cert-manager's layout (``tls.crt``, ``tls.key``)."""
        return cls(port, directory / CERT_FILE, directory / KEY_FILE)

    def certificate_config(self) -> dict[str, Any]:
        """The certificate's part of the listener's CommonTlsContext."""
        return {
            "tls_certificates": [
                {
                    "certificate_chain": {"filename": str(self.cert_file)},
                    "private_key": {"filename": str(self.key_file)},
                }
            ]
        }


@dataclass(frozen=True, slots=True)
class EdgeTlsSds:
    """A client listener that terminates TLS with the certificate ``secret``
    from the file-based SDS resource at ``sds_path``. Envoy watches what that
    resource names and serves a renewed certificate from the next handshake,
    without a restart."""

    port: int
    sds_path: str
    secret: str
    stat_prefix: str

    def certificate_config(self) -> dict[str, Any]:
        """The certificate's part of the listener's CommonTlsContext."""
        return {
            "tls_certificate_sds_secret_configs": [
                {
                    "name": self.secret,
                    "sds_config": {
                        "path_config_source": {"path": self.sds_path},
                        "resource_api_version": "V3",
                    },
                }
            ]
        }


ClientTls = EdgeTls | EdgeTlsSds

K8S_TLS = EdgeTlsSds(
    port=K8S_TLS_PORT,
    sds_path=K8S_SDS_PATH,
    secret=K8S_SDS_SECRET,
    # The plaintext listener's prefix: every overlay, prod (TLS only)
    # included, then reports its client traffic under the same stats.
    stat_prefix="edge",
)


@dataclass(frozen=True, slots=True)
class K8sOverlay:
    """The client listeners of one Kubernetes variant's edge."""

    plaintext: bool
    tls: bool


K8S_OVERLAYS = {
    "base": K8sOverlay(plaintext=True, tls=False),
    "dev": K8sOverlay(plaintext=True, tls=True),
    # Clients reach production over TLS only.
    "prod": K8sOverlay(plaintext=False, tls=True),
}

# Each checked-in file and the variant it holds verbatim.
CHECKED_IN = {
    REPO_ROOT / "envoy" / "envoy.yaml": "base",
    REPO_ROOT / "k8s" / "base" / "edge" / "envoy.yaml": "base",
    REPO_ROOT / "k8s" / "overlays" / "dev" / "edge" / "envoy.yaml": "dev",
    REPO_ROOT / "k8s" / "overlays" / "prod" / "edge" / "envoy.yaml": "prod",
}


def _socket_address(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def _typed(type_name: str, **fields: Any) -> dict[str, Any]:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def _router_filter() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.router",
        "typed_config": _typed("envoy.extensions.filters.http.router.v3.Router"),
    }


def _json_access_log() -> list[dict[str, Any]]:
    # Paths are logged without their query string: WebSocket clients may put
    # their bearer token there, and tokens must never reach the logs.
    fields = {
        "start_time": "%START_TIME%",
        "method": "%REQ(:METHOD)%",
        "path": "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        "protocol": "%PROTOCOL%",
        "upgrade": "%REQ(UPGRADE)%",
        "response_code": "%RESPONSE_CODE%",
        "response_flags": "%RESPONSE_FLAGS%",
        "response_code_details": "%RESPONSE_CODE_DETAILS%",
        "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
        "bytes_received": "%BYTES_RECEIVED%",
        "bytes_sent": "%BYTES_SENT%",
        "duration_ms": "%DURATION%",
        "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
        "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
        "user_agent": "%REQ(USER-AGENT)%",
        "authority": "%REQ(:AUTHORITY)%",
        "request_id": "%REQ(X-REQUEST-ID)%",
        "upstream_host": "%UPSTREAM_HOST%",
        "upstream_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    }
    return [
        {
            "name": "envoy.access_loggers.stdout",
            "typed_config": _typed(
                "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                log_format={
                    "json_format": fields,
                    "formatters": [
                        {
                            "name": "envoy.formatter.req_without_query",
                            "typed_config": _typed(
                                "envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery"
                            ),
                        }
                    ],
                },
            ),
        }
    ]


def _downstream_tls(tls: ClientTls) -> dict[str, Any]:
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": _typed(
            "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            common_tls_context={
                "tls_params": {"tls_minimum_protocol_version": TLS_MINIMUM_VERSION},
                "alpn_protocols": TLS_ALPN,
                **tls.certificate_config(),
            },
        ),
    }


def _gateway_route() -> dict[str, Any]:
    return {
        "match": {"prefix": "/"},
        "route": {
            "cluster": GATEWAY_CLUSTER,
            # WebSockets live for hours: no per-request deadline;
            # stream_idle_timeout reaps dead ones.
            "timeout": "0s",
            # A gateway that died since the last health check refuses the
            # connection: try another one instead of failing the client's
            # upgrade.
            "retry_policy": {
                "retry_on": RETRY_ON,
                "retriable_status_codes": RETRIABLE_STATUS_CODES,
                "num_retries": 2,
                "retry_host_predicate": [
                    {
                        "name": "envoy.retry_host_predicates.previous_hosts",
                        "typed_config": _typed(
                            "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                        ),
                    }
                ],
                "host_selection_retry_max_attempts": 3,
            },
        },
    }


def _web_routes() -> list[dict[str, Any]]:
    return [
        {"match": {"prefix": prefix}, "route": {"cluster": WEB_CLUSTER, "timeout": "30s"}}
        for prefix in WEB_PREFIXES
    ]


def _edge_hcm(stat_prefix: str, *, web: bool = False) -> dict[str, Any]:
    """How every client listener handles HTTP and WebSockets."""
    return _typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix=stat_prefix,
        codec_type="AUTO",
        # Clients connect directly (or through an L4 load balancer that keeps
        # the source address): trust only the peer address, never a
        # client-supplied X-Forwarded-For.
        use_remote_address=True,
        xff_num_trusted_hops=0,
        # Path normalisation so every path reaches the gateways in canonical form.
        normalize_path=True,
        merge_slashes=True,
        path_with_escaped_slashes_action="UNESCAPE_AND_REDIRECT",
        max_request_headers_kb=32,
        # Bounds slow-loris clients; applies only until the request headers
        # arrive, so it does not limit the lifetime of an upgraded stream.
        request_headers_timeout="10s",
        stream_idle_timeout=STREAM_IDLE_TIMEOUT,
        # After a WebSocket's close handshake the gateway closes its side and
        # the client waits for the TCP close; Envoy's default 1 s grace for the
        # client's FIN would add a second to every close.
        delayed_close_timeout="0.1s",
        common_http_protocol_options={
            "idle_timeout": CONNECTION_IDLE_TIMEOUT,
            "headers_with_underscores_action": "REJECT_REQUEST",
        },
        http2_protocol_options={
            "max_concurrent_streams": 100,
            "initial_stream_window_size": 65536,
            "initial_connection_window_size": 1048576,
        },
        upgrade_configs=[{"upgrade_type": "websocket"}],
        access_log=_json_access_log(),
        route_config={
            "name": "edge",
            "virtual_hosts": [
                {
                    "name": "gateways",
                    "domains": ["*"],
                    "routes": [*(_web_routes() if web else []), _gateway_route()],
                }
            ],
        },
        http_filters=[_router_filter()],
    )


def _client_listener(
    name: str,
    address: str,
    port: int,
    *,
    stat_prefix: str,
    tls: ClientTls | None = None,
    web: bool = False,
) -> dict[str, Any]:
    """A client listener; the plaintext and the TLS ones differ only in their
    transport socket and stats prefix, so all route and time out WebSockets
    alike."""
    chain: dict[str, Any] = {
        "filters": [
            {
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": _edge_hcm(stat_prefix, web=web),
            }
        ]
    }
    if tls is not None:
        chain["transport_socket"] = _downstream_tls(tls)
    return {
        "name": name,
        "address": _socket_address(address, port),
        "per_connection_buffer_limit_bytes": CONNECTION_BUFFER_BYTES,
        "filter_chains": [chain],
    }


def _client_listeners(
    address: str, plaintext_port: int | None, tls: ClientTls | None, *, web: bool = False
) -> list[dict[str, Any]]:
    listeners = []
    if plaintext_port is not None:
        listeners.append(
            _client_listener("edge", address, plaintext_port, stat_prefix="edge", web=web)
        )
    if tls is not None:
        listeners.append(
            _client_listener(
                "edge_tls", address, tls.port, stat_prefix=tls.stat_prefix, tls=tls, web=web
            )
        )
    if not listeners:
        raise ValueError("the edge needs a plaintext or a TLS client listener")
    return listeners


def _probe_listener(address: str, port: int) -> dict[str, Any]:
    """Kubelet probes and Prometheus scrapes, kept off the client listener.

    ``/ready`` is answered by Envoy itself: 200, or 503 once an operator takes
    the pod out of rotation with ``POST /healthcheck/fail`` on the admin port.
    ``/stats/prometheus`` is forwarded to the admin interface, which stays
    bound to loopback because it can mutate state.
    """
    hcm = _typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix="probe",
        codec_type="HTTP1",
        route_config={
            "name": "probe",
            "virtual_hosts": [
                {
                    "name": "probe",
                    "domains": ["*"],
                    "routes": [
                        {
                            "match": {"path": "/stats/prometheus"},
                            "route": {"cluster": ADMIN_CLUSTER},
                        },
                        {
                            "match": {"prefix": "/"},
                            "direct_response": {"status": 404},
                        },
                    ],
                }
            ],
        },
        http_filters=[
            {
                "name": "envoy.filters.http.health_check",
                "typed_config": _typed(
                    "envoy.extensions.filters.http.health_check.v3.HealthCheck",
                    pass_through_mode=False,
                    headers=[{"name": ":path", "string_match": {"exact": "/ready"}}],
                ),
            },
            _router_filter(),
        ],
    )
    return {
        "name": "probe",
        "address": _socket_address(address, port),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": hcm,
                    }
                ]
            }
        ],
    }


def _gateway_cluster(endpoints: list[tuple[str, int]], discovery: str) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": GATEWAY_CLUSTER,
        "type": discovery,
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        # A gateway that leaves service discovery (pod terminating) stops
        # receiving new upgrades at once, even while it still answers
        # /healthz during its preStop delay. Envoy would otherwise keep it
        # until it failed an active check. Established WebSockets are not
        # cut: the gateway closes them itself when it drains.
        "ignore_health_on_host_removal": True,
        "per_connection_buffer_limit_bytes": CONNECTION_BUFFER_BYTES,
        # WebSocket upgrades are HTTP/1.1 requests; the gateways speak nothing else.
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": _typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                common_http_protocol_options={"idle_timeout": CONNECTION_IDLE_TIMEOUT},
                explicit_http_config={"http_protocol_options": {}},
            )
        },
        # Keepalives detect gateways that disappeared without closing sockets
        # (node loss) well before the stream idle timeout would.
        "upstream_connection_options": {
            "tcp_keepalive": {
                "keepalive_time": 60,
                "keepalive_interval": 10,
                "keepalive_probes": 3,
            }
        },
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": MAX_UPSTREAM_CONNECTIONS,
                    "max_pending_requests": 10_000,
                    "max_requests": MAX_UPSTREAM_CONNECTIONS,
                    "max_retries": 3,
                }
            ],
            "per_host_thresholds": [
                {"priority": "DEFAULT", "max_connections": MAX_CONNECTIONS_PER_GATEWAY}
            ],
        },
        # Active checks take a gateway out of rotation as soon as it stops
        # answering /healthz (including while it drains for shutdown).
        "health_checks": [
            {
                "timeout": "1s",
                "interval": "5s",
                "interval_jitter": "1s",
                "no_traffic_interval": "5s",
                "unhealthy_threshold": 2,
                "healthy_threshold": 1,
                "http_health_check": {"path": "/healthz"},
            }
        ],
        # Passive checks catch gateways that pass /healthz yet answer
        # upgrades with 5xx.
        "outlier_detection": {
            # Local-origin errors are counted apart from those, and never
            # eject: Envoy reports every WebSocket the gateway closes (each
            # client's ordinary goodbye) as a local-origin reset, so two
            # goodbyes in a row would take a healthy gateway out of rotation.
            # A refused connection is retried on another gateway (the route's
            # retry policy), and a dead one leaves rotation at its second
            # failed active check.
            "split_external_local_origin_errors": True,
            "enforcing_consecutive_local_origin_failure": 0,
            "enforcing_local_origin_success_rate": 0,
            "consecutive_5xx": 5,
            "consecutive_gateway_failure": 3,
            "interval": "10s",
            "base_ejection_time": "30s",
            "max_ejection_time": "300s",
            "max_ejection_percent": 50,
        },
        "load_assignment": {
            "cluster_name": GATEWAY_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _socket_address(host, port)}}
                        for host, port in endpoints
                    ]
                }
            ],
        },
    }
    if discovery == "STRICT_DNS":
        # The headless Service returns one A record per ready gateway pod and
        # each becomes an endpoint. Envoy re-resolves every 5 s by default,
        # quick enough for scale-ups and rollouts to take traffic promptly.
        cluster["dns_lookup_family"] = "V4_ONLY"
    return cluster


def _web_cluster(host: str, port: int) -> dict[str, Any]:
    return {
        "name": WEB_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": WEB_CLUSTER,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _socket_address(host, port)}}]}
            ],
        },
    }


def _admin_cluster(admin_port: int) -> dict[str, Any]:
    return {
        "name": ADMIN_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": ADMIN_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _socket_address("127.0.0.1", admin_port)}}
                    ]
                }
            ],
        },
    }


def build_config(
    *,
    listen_address: str,
    listen_port: int | None,
    admin_port: int,
    gateway_endpoints: list[tuple[str, int]],
    discovery: str,
    probe_port: int | None = None,
    tls: ClientTls | None = None,
    web_endpoint: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """Return the Envoy bootstrap as a dict.

    ``discovery`` is ``STATIC`` (literal IP endpoints) or ``STRICT_DNS``
    (hostnames, every resolved address becomes an endpoint). ``listen_port``
    is the plaintext listener ``edge``'s, or ``None`` for none; ``tls`` adds
    the listener ``edge_tls`` on ``listen_address:tls.port``. At least one of
    the two is required. ``web_endpoint`` routes ``/app`` and ``/dev/`` to a
    local cluster's developer endpoints.
    """
    if discovery not in ("STATIC", "STRICT_DNS"):
        raise ValueError(f"unsupported discovery type {discovery!r}")
    if not gateway_endpoints:
        raise ValueError("at least one gateway endpoint is required")

    listeners = _client_listeners(listen_address, listen_port, tls, web=web_endpoint is not None)
    clusters = [_gateway_cluster(gateway_endpoints, discovery)]
    if web_endpoint is not None:
        clusters.append(_web_cluster(*web_endpoint))
    if probe_port is not None:
        listeners.append(_probe_listener(listen_address, probe_port))
        clusters.append(_admin_cluster(admin_port))

    return {
        # The admin interface can drain listeners and change log levels, so it
        # is only ever reachable from inside the host / pod.
        "admin": {"address": _socket_address("127.0.0.1", admin_port)},
        "static_resources": {"listeners": listeners, "clusters": clusters},
        # Without a global cap a connection flood exhausts memory and file
        # descriptors before anything pushes back.
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": _typed(
                        "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                        max_active_downstream_connections=MAX_DOWNSTREAM_CONNECTIONS,
                    ),
                }
            ]
        },
    }


class _Dumper(yaml.SafeDumper):
    # Listeners share constants such as RETRIABLE_STATUS_CODES; written as
    # anchors and aliases, one listener's settings would point into another's.
    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(config: dict[str, Any]) -> str:
    return GENERATED_HEADER + yaml.dump(
        config, Dumper=_Dumper, sort_keys=False, default_flow_style=False
    )


def render_local(
    listen_port: int,
    admin_port: int,
    gateway_ports: list[int],
    host: str = "127.0.0.1",
    tls: EdgeTls | None = None,
    web_port: int | None = None,
) -> str:
    """Config for a single machine: edge on ``host:listen_port`` (and, with
    ``tls``, on ``host:tls.port`` over TLS) in front of gateways at
    ``host:<each gateway port>``; admin on loopback; with ``web_port``,
    ``/app`` and ``/dev/`` go to the developer endpoints there."""
    return dump(
        build_config(
            listen_address=host,
            listen_port=listen_port,
            admin_port=admin_port,
            gateway_endpoints=[(host, port) for port in gateway_ports],
            discovery="STATIC",
            tls=tls,
            web_endpoint=(host, web_port) if web_port is not None else None,
        )
    )


def render_k8s(overlay: str = "base") -> str:
    """Config for the ``edge`` Deployment in namespace ``chatmesh``, with
    the client listeners of ``overlay`` (a key of ``K8S_OVERLAYS``)."""
    listeners = K8S_OVERLAYS[overlay]
    return dump(
        build_config(
            listen_address="0.0.0.0",
            listen_port=K8S_LISTEN_PORT if listeners.plaintext else None,
            admin_port=K8S_ADMIN_PORT,
            gateway_endpoints=[(K8S_GATEWAY_HOST, K8S_GATEWAY_PORT)],
            discovery="STRICT_DNS",
            probe_port=K8S_PROBE_PORT,
            tls=K8S_TLS if listeners.tls else None,
        )
    )


def write_checked_in() -> list[Path]:
    for path, overlay in CHECKED_IN.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_k8s(overlay))
    return list(CHECKED_IN)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--k8s",
        nargs="?",
        const="base",
        choices=K8S_OVERLAYS,
        metavar="OVERLAY",
        help=f"print a Kubernetes variant: {', '.join(K8S_OVERLAYS)} (default base)",
    )
    mode.add_argument(
        "--write", action="store_true", help="regenerate every checked-in Kubernetes copy"
    )
    parser.add_argument("--listen-port", type=int, default=8080)
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument(
        "--gateway-port",
        type=int,
        action="append",
        dest="gateway_ports",
        help="a gateway WebSocket port (repeat; default 8101 and 8102)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tls-port", type=int, help="also listen for TLS clients on this port")
    parser.add_argument(
        "--tls-dir", type=Path, help="the TLS listener's tls.crt and tls.key (with --tls-port)"
    )
    args = parser.parse_args(argv)
    if (args.tls_port is None) != (args.tls_dir is None):
        parser.error("--tls-port and --tls-dir go together")

    if args.write:
        for path in write_checked_in():
            print(f"wrote {path.relative_to(REPO_ROOT)}", file=sys.stderr)
        return 0
    if args.k8s is not None:
        sys.stdout.write(render_k8s(args.k8s))
        return 0
    sys.stdout.write(
        render_local(
            args.listen_port,
            args.admin_port,
            args.gateway_ports or [8101, 8102],
            host=args.host,
            tls=None if args.tls_port is None else EdgeTls.from_dir(args.tls_port, args.tls_dir),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
