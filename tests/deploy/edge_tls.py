"""The edge's TLS configs for the Kubernetes overlays.

``chatmesh/edge_config.py`` renders the plaintext Kubernetes config; each
overlay's config is that render plus a TLS listener on ``TLS_LISTEN_PORT``
serving Secret ``edge-tls``. dev keeps the plaintext listener beside it;
prod has only the TLS one. The checked-in copies must equal what this module
derives (tests/deploy/test_envoy_config.py), so a change to the renderer
reaches the overlays through::

    python -m tests.deploy.edge_tls --write

Envoy reads the certificate through a file-based SDS resource
(``k8s/components/edge-tls/edge-tls-sds.yaml``) rather than inline file
names: SDS watches the Secret's directory and serves a renewed certificate
from the next handshake on, where inline files are read once at startup.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from chatmesh import edge_config as render

REPO_ROOT = Path(__file__).resolve().parents[2]
TLS_LISTEN_PORT = 8443
TLS_LISTENER = "edge_tls"
# The SDS resource file, in the edge-envoy ConfigMap beside envoy.yaml, and
# the secret it names.
SDS_PATH = "/etc/envoy/edge-tls-sds.yaml"
SDS_SECRET = "edge_tls"

CHECKED_IN = {
    "dev": REPO_ROOT / "k8s" / "overlays" / "dev" / "edge" / "envoy.yaml",
    "prod": REPO_ROOT / "k8s" / "overlays" / "prod" / "edge" / "envoy.yaml",
}
KEEPS_PLAINTEXT = {"dev": True, "prod": False}

HEADER = (
    "# Chatmesh edge proxy configuration with TLS (Envoy 1.40, v3 API).\n"
    "# chatmesh/edge_config.py's Kubernetes config plus a TLS listener, derived\n"
    "# by tests/deploy/edge_tls.py: after changing either, run\n"
    "#   python -m tests.deploy.edge_tls --write\n"
    "# tests/deploy/test_envoy_config.py fails when this copy is stale.\n"
)

DOWNSTREAM_TLS = (
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
)


def _tls_listener(plaintext: dict[str, Any]) -> dict[str, Any]:
    """The plaintext edge listener's twin: same HTTP handling, TLS in front."""
    listener = copy.deepcopy(plaintext)
    listener["name"] = TLS_LISTENER
    listener["address"]["socket_address"]["port_value"] = TLS_LISTEN_PORT
    (chain,) = listener["filter_chains"]
    chain["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": DOWNSTREAM_TLS,
            "common_tls_context": {
                "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                # Clients only open WebSockets, an HTTP/1.1 upgrade: h2 would
                # buy nothing but a second code path.
                "alpn_protocols": ["http/1.1"],
                "tls_certificate_sds_secret_configs": [
                    {
                        "name": SDS_SECRET,
                        "sds_config": {
                            "path_config_source": {"path": SDS_PATH},
                            "resource_api_version": "V3",
                        },
                    }
                ],
            },
        },
    }
    return listener


def build(*, keep_plaintext: bool) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(render.render_k8s())
    listeners = config["static_resources"]["listeners"]
    (index,) = [i for i, listener in enumerate(listeners) if listener["name"] == "edge"]
    tls = _tls_listener(listeners[index])
    if keep_plaintext:
        listeners.insert(index + 1, tls)
    else:
        listeners[index] = tls
    return config


def render_overlay(overlay: str) -> str:
    config = build(keep_plaintext=KEEPS_PLAINTEXT[overlay])
    return HEADER + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate the checked-in copies")
    args = parser.parse_args(argv)
    if not args.write:
        sys.stdout.write(render_overlay("prod"))
        return 0
    for overlay, path in CHECKED_IN.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_overlay(overlay))
        print(f"wrote {path.relative_to(REPO_ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
