"""The Kubernetes manifests as ``kubectl apply -k`` sees them, rendered offline
by the real kustomize binary (installed by ``bash deploy/local/tools.sh``)."""

from __future__ import annotations

import base64
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = REPO_ROOT / ".local" / "bin" / "kustomize"
# dev-multinode is dev with Cassandra, Kafka and Redis in multi-node shapes
# (k8s/components/multinode-stores).
OVERLAYS = ("base", "dev", "dev-multinode", "prod")

Resource = dict[str, Any]


@cache
def render(overlay: str) -> tuple[Resource, ...]:
    if not KUSTOMIZE.is_file():
        pytest.fail(
            f"kustomize not found at {KUSTOMIZE.relative_to(REPO_ROOT)}; "
            "install it with: bash deploy/local/tools.sh"
        )
    path = REPO_ROOT / "k8s" / ("base" if overlay == "base" else f"overlays/{overlay}")
    proc = subprocess.run(
        [str(KUSTOMIZE), "build", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"kustomize build {path} failed:\n{proc.stderr}"
    docs = tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)
    assert docs, f"kustomize build {path} rendered nothing"
    return docs


def of_kind(docs: tuple[Resource, ...], kind: str) -> dict[str, Resource]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def config_map(docs: tuple[Resource, ...], prefix: str) -> Resource:
    """The generated (hash-suffixed) ConfigMap called ``prefix``."""
    (found,) = [
        cm for name, cm in of_kind(docs, "ConfigMap").items() if name.startswith(prefix + "-")
    ]
    return found


def one_container(workload: Resource) -> Resource:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def secret_value(docs: tuple[Resource, ...], name: str, key: str) -> str:
    """One key of a rendered Secret, decoded; ``name`` as the pods reference it."""
    return base64.b64decode(of_kind(docs, "Secret")[name]["data"][key]).decode()
