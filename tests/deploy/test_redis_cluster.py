"""The dev-multinode overlay's Redis Cluster, on six real redis-server
processes, formed by the overlay's own Job.

Every node runs the rendered StatefulSet's arguments, with the pod's address
and name filled in as the kubelet does, and loads the config files of the
rendered Secret. The Job's script forms the cluster and, run again, leaves it
as it is; each service's user learns the cluster's shape, by the nodes'
names; replicas sync as the replication user. Then all six restart on new
addresses, as pods do: the init container's script, run first on each
node's data, lets them find one another again.

Each node has an address of its own on the loopback interface (Linux routes
all of 127.0.0.0/8 there), names under the peers Service resolve through a
stand-in for getent, and redis-server and redis-cli come from
``deploy/local/backing.sh up``.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from redis.asyncio.cluster import RedisCluster

from chatmesh import redis_acl
from tests.deploy.manifests import Resource, of_kind, one_container, render, secret_value

OVERLAY = "dev-multinode"
JOB = "redis-cluster-create"
ADMIN_USER = "cluster-admin"
REPLICATION_USER = "replica"
BUS_PORT_OFFSET = 10000  # Redis's default: the cluster bus on the client port + 10000
SETTLE_S = 30.0  # for the nodes to agree, after forming or restarting


def _users(config: str) -> dict[str, str]:
    """ACL users by name: each one's rules, as its config line gives them."""
    return {
        line.split()[1]: line.split(" ", 2)[2]
        for line in config.splitlines()
        if line.startswith("user ")
    }


def _directives(config: str) -> dict[str, str]:
    return {
        line.split()[0]: line.split(" ", 1)[1]
        for line in config.splitlines()
        if line.strip() and not line.startswith(("#", "user "))
    }


@dataclass(frozen=True, slots=True)
class Rendered:
    """What the rendered manifests say about the Redis Cluster."""

    args: list[str]  # the redis container's, "redis-server" first
    mounts: dict[str, str]  # mount path -> volume name, the redis container's
    config_files: dict[str, str]  # the Secret's files, by name, as mounted
    init_script: str
    job_script: str
    job_nodes: list[str]  # host:port, the Job's NODES
    admin_password: str
    service_urls: dict[str, str]

    @classmethod
    def of(cls, docs: tuple[Resource, ...]) -> Rendered:
        statefulset = of_kind(docs, "StatefulSet")["redis"]
        pod = statefulset["spec"]["template"]["spec"]
        container = one_container(statefulset)
        (init,) = pod["initContainers"]
        (acl,) = [v["secret"] for v in pod["volumes"] if "secret" in v]
        job = one_container(of_kind(docs, "Job")[JOB])
        job_env = {e["name"]: e for e in job["env"]}
        admin = job_env["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"]
        urls = {}
        for service in redis_acl.service_rules(""):
            (entry,) = [
                e
                for e in one_container(of_kind(docs, "Deployment")[service])["env"]
                if e["name"] == "CHATMESH_REDIS_URL"
            ]
            ref = entry["valueFrom"]["secretKeyRef"]
            urls[service] = secret_value(docs, ref["name"], ref["key"])
        return cls(
            args=container["args"],
            mounts={m["mountPath"]: m["name"] for m in container["volumeMounts"]},
            config_files={
                item["path"]: secret_value(docs, acl["secretName"], item["key"])
                for item in acl["items"]
            },
            init_script=init["command"][-1],
            job_script=job["command"][-1],
            job_nodes=job_env["NODES"]["value"].split(),
            admin_password=secret_value(docs, admin["name"], admin["key"]),
            service_urls=urls,
        )

    def mount_path(self, volume: str) -> str:
        (path,) = [path for path, name in self.mounts.items() if name == volume]
        return path


def _expand(text: str, env: dict[str, str]) -> str:
    """The kubelet's $(NAME) expansion of a container's args."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), text)


def _bindable(address: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, port))
        except OSError:
            return False
        return True


class Cluster:
    """Six nodes as the StatefulSet's pods, each with its own directory
    standing in for its volume, on one port and an address per node that
    changes when they all restart."""

    def __init__(self, rendered: Rendered, root: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None or shutil.which("redis-cli") is None:
            pytest.fail("redis-server not found; install it with: deploy/local/backing.sh up")
        self.binary = binary
        self.rendered = rendered
        self.root = root
        self.hostnames = [node.rsplit(":", 1)[0] for node in rendered.job_nodes]
        self.processes: list[subprocess.Popen[bytes]] = []
        # Two generations of addresses on a loopback /24 of its own.
        network = f"127.{random.randint(64, 250)}.{random.randint(0, 255)}"
        self.generations = [
            [f"{network}.{10 + i}" for i in range(len(self.hostnames))],
            [f"{network}.{30 + i}" for i in range(len(self.hostnames))],
        ]
        if not _bindable(self.generations[0][0], 0):
            pytest.skip("needs loopback addresses beyond 127.0.0.1, as Linux has")
        every = [a for generation in self.generations for a in generation]
        port = next(
            (
                port
                for port in random.sample(range(20000, 30000), 200)
                if all(_bindable(a, p) for a in every for p in (port, port + BUS_PORT_OFFSET))
            ),
            None,
        )
        if port is None:
            pytest.fail(f"no free port pair (port, port + {BUS_PORT_OFFSET}) on {every}")
        self.port = port
        self.addresses: list[str] = []

        # The Secret's files where the pod mounts them, and getent's stand-in.
        self.config_dir = root / "config"
        self.config_dir.mkdir()
        for name, text in rendered.config_files.items():
            (self.config_dir / name).write_text(text)
        bin_dir = root / "bin"
        bin_dir.mkdir()
        self.hosts_file = root / "hosts"
        getent = bin_dir / "getent"
        getent.write_text(
            "#!/bin/sh\n"
            '[ "$1" = hosts ] || exit 2\n'
            "while read -r name address; do\n"
            '  [ "$name" = "$2" ] && { echo "$address $name"; exit 0; }\n'
            f"done < {self.hosts_file}\n"
            "exit 2\n"
        )
        getent.chmod(0o755)
        self.path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"

    def data_dir(self, ordinal: int) -> Path:
        path = self.root / f"redis-{ordinal}"
        path.mkdir(exist_ok=True)
        return path

    def _localized(self, text: str, ordinal: int) -> str:
        """Paths inside the pod's mounts, as this node's directories."""
        config_mount = self.rendered.mount_path("acl")
        data_mount = self.rendered.mount_path("data")
        text = text.replace(config_mount + "/", f"{self.config_dir}/")
        return text.replace(data_mount + "/", f"{self.data_dir(ordinal)}/")

    def start(self, generation: int) -> None:
        """Every node, on that generation's addresses, as pods starting
        together: the init container first, then Redis."""
        self.addresses = self.generations[generation]
        self.hosts_file.write_text(
            "".join(f"{name} {a}\n" for name, a in zip(self.hostnames, self.addresses, strict=True))
        )
        for ordinal in range(len(self.addresses)):
            init = subprocess.run(
                ["sh", "-c", self._localized(self.rendered.init_script, ordinal)],
                env={"PATH": self.path},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert init.returncode == 0, init.stderr
        for ordinal, address in enumerate(self.addresses):
            pod = {"POD_IP": address, "POD_NAME": f"redis-{ordinal}"}
            args = [self._localized(_expand(a, pod), ordinal) for a in self.rendered.args[1:]]
            log = (self.data_dir(ordinal) / "redis.log").open("ab")
            self.processes.append(
                subprocess.Popen(
                    [self.binary, *args, "--bind", address, "--port", str(self.port)],
                    cwd=self.data_dir(ordinal),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
        for ordinal, address in enumerate(self.addresses):
            deadline = time.monotonic() + 10
            while True:
                assert self.processes[ordinal].poll() is None, self.log(ordinal)
                try:
                    with socket.create_connection((address, self.port), timeout=1):
                        break
                except OSError:
                    assert time.monotonic() < deadline, self.log(ordinal)
                    time.sleep(0.05)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(10)
        self.processes = []

    def log(self, ordinal: int) -> str:
        return (self.data_dir(ordinal) / "redis.log").read_text()

    def admin(self, ordinal: int) -> redis.Redis:
        return redis.Redis(
            host=self.addresses[ordinal],
            port=self.port,
            username=ADMIN_USER,
            password=self.rendered.admin_password,
            decode_responses=True,
        )

    def cluster_info(self, ordinal: int) -> dict[str, str]:
        with self.admin(ordinal) as client:
            return {k: str(v) for k, v in client.cluster("INFO").items()}

    def replication(self, ordinal: int) -> dict[str, str]:
        with self.admin(ordinal) as client:
            return {k: str(v) for k, v in client.info("replication").items()}

    def roles(self) -> list[str]:
        return [self.replication(i)["role"] for i in range(len(self.addresses))]

    def primaries(self) -> set[str]:
        """The primaries' names, as the cluster announces them."""
        with self.admin(0) as client:
            nodes = client.cluster("NODES").values()
        return {n["hostname"] for n in nodes if "master" in n["flags"].split(",")}

    def known_nodes(self, ordinal: int) -> dict[str, bool]:
        """Each node this one knows, by address: whether it is connected."""
        with self.admin(ordinal) as client:
            return {a: n["connected"] for a, n in client.cluster("NODES").items()}

    def run_job(self) -> subprocess.CompletedProcess[str]:
        """The Job's script, with the nodes on the test's port."""
        nodes = [f"{name}:{self.port}" for name in self.hostnames]
        return subprocess.run(
            ["sh", "-c", self.rendered.job_script],
            env={
                "PATH": self.path,
                "NODES": " ".join(nodes),
                "REDISCLI_AUTH": self.rendered.admin_password,
            },
            capture_output=True,
            text=True,
            timeout=120,
        )

    def wait_settled(self) -> None:
        """Until every node sees the whole cluster, on the current addresses,
        and every replica follows its primary."""
        deadline = time.monotonic() + SETTLE_S
        expected = dict.fromkeys((f"{a}:{self.port}" for a in self.addresses), True)
        while True:
            states = [self.cluster_info(i) for i in range(len(self.addresses))]
            known = [self.known_nodes(i) for i in range(len(self.addresses))]
            links = [self.replication(i) for i in range(len(self.addresses))]
            settled = (
                all(s["cluster_state"] == "ok" for s in states)
                and all(k == expected for k in known)
                and all(r.get("master_link_status") == "up" for r in links if r["role"] == "slave")
            )
            if settled:
                return
            assert time.monotonic() < deadline, (states, known, links)
            time.sleep(0.2)


@pytest.fixture(scope="module")
def rendered() -> Rendered:
    return Rendered.of(render(OVERLAY))


@pytest.fixture(scope="module")
def cluster(rendered: Rendered, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Formed by the Job, settled; whichever addresses it is on now."""
    nodes = Cluster(rendered, tmp_path_factory.mktemp("redis-cluster"))
    try:
        nodes.start(0)
        job = nodes.run_job()
        assert job.returncode == 0, job.stdout + job.stderr
        nodes.wait_settled()
        yield nodes
    finally:
        nodes.stop()


def test_the_cluster_users_sit_beside_the_services(rendered: Rendered) -> None:
    services = _users(rendered.config_files["acl.conf"])
    cluster = _users(rendered.config_files["cluster.conf"])
    # Redis refuses a user defined twice; each file adds its own.
    assert not set(services) & set(cluster)
    assert set(cluster) == {ADMIN_USER, REPLICATION_USER}
    assert cluster[ADMIN_USER].startswith(f"on >{rendered.admin_password} ")
    # Replication and nothing else, for the replicas' credentials.
    directives = _directives(rendered.config_files["cluster.conf"])
    assert directives["masteruser"] == REPLICATION_USER
    assert cluster[REPLICATION_USER] == (
        f"on >{directives['masterauth']} resetkeys resetchannels -@all +psync +replconf +ping"
    )
    # No cluster setting in the files: the arguments say them all.
    assert set(directives) == {"masteruser", "masterauth"}


def test_the_job_leaves_a_formed_cluster_alone(cluster: Cluster) -> None:
    roles = cluster.roles()
    assert sorted(roles) == ["master"] * 3 + ["slave"] * 3
    job = cluster.run_job()
    assert job.returncode == 0, job.stdout + job.stderr
    assert "the cluster is formed" in job.stdout
    assert cluster.roles() == roles


def test_each_service_learns_the_cluster_by_name(cluster: Cluster, rendered: Rendered) -> None:
    # One node's address to start from (the client Service's), then each
    # shard by the name its node announces, never by its address (replicas
    # too, once they have synced something).
    names = dict(zip(cluster.hostnames, cluster.addresses, strict=True))
    primaries = cluster.primaries()
    assert len(primaries) == 3 and primaries <= set(names)
    for service, url in rendered.service_urls.items():
        parsed = urlsplit(url)
        seen: set[str] = set()

        def remap(address: tuple[str, int], seen: set[str] = seen) -> tuple[str, int]:
            host, _ = address
            seen.add(host)
            return names.get(host, host), cluster.port

        async def scenario(username: str | None, password: str | None) -> None:
            client = RedisCluster(
                host=cluster.addresses[0],
                port=cluster.port,
                username=username,
                password=password,
                address_remap=remap,
            )
            try:
                await client.initialize()
                await client.ping(target_nodes=RedisCluster.ALL_NODES)
            finally:
                await client.aclose()

        asyncio.run(scenario(parsed.username, parsed.password))
        assert primaries <= seen <= set(names), service


def test_the_cluster_comes_back_after_all_nodes_restart_on_new_addresses(
    cluster: Cluster,
) -> None:
    before = cluster.roles()
    generation = 1 if cluster.addresses == cluster.generations[0] else 0
    cluster.stop()
    cluster.start(generation)
    cluster.wait_settled()
    job = cluster.run_job()
    assert job.returncode == 0, job.stdout + job.stderr
    assert "the cluster is formed" in job.stdout
    assert sorted(cluster.roles()) == sorted(before)
