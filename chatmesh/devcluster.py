"""The whole system on one machine: every service its own OS process.

``python -m chatmesh.devcluster up`` starts (against already running backing
stores, see ``deploy/local/backing.sh``) sessionsvc, presencesvc, notifysvc,
msgsvc, two gateways and Envoy in front of them, waits until each answers
its health check, prints where to connect and runs until Ctrl-C.

Envoy takes clients in plaintext (``edge_url``) and over TLS
(``edge_tls_url``), the latter with a certificate from a local edge CA of
the workdir's own (``edge_ca_file``), apart from the mesh CA.

The end-to-end tests use ``LocalCluster`` directly, on free ports with their
own keyspace, database and Redis key prefix, and kill and restart its
processes to prove what survives. Two options exist for them:

- ``own_redis``: the cluster runs a private ``redis-server`` as its process
  ``"redis"`` (started first, stopped last, every service pointed at it), so a
  test can kill and restart Redis without disturbing other tests. It persists
  every write before acknowledging it (AOF, ``appendfsync always``), so even a
  SIGKILL loses nothing that was acknowledged, like msgsvc's idempotency claims.
- ``own_kafka``: likewise a private single-node Kafka (process ``"kafka"``,
  the jars ``deploy/local/backing.sh`` resolved, data under the workdir), so
  a test can kill the broker; ``fanout_workers`` sets how many fan-out
  workers run (``"fanout-1"``, ...).
- ``gateways`` and ``edges``: how many gateway processes (``"gateway-1"``,
  ...) and Envoy processes (``"envoy"``, ``"envoy-2"``, ...) run; every Envoy
  fronts every gateway. A process holds at most 20,000 files here, and a
  proxied WebSocket costs Envoy two, so tens of thousands of connections need
  several of each. The Envoys after the first listen in plaintext only
  (``edge_urls``).
- ``msgsvc_instances``: more than one msgsvc (``"msgsvc"``, ``"msgsvc2"``, ...),
  each its own process and port over the same stores; gateway *i* uses
  instance *i* mod *n*.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import grpc
import redis
from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chatmesh import redis_acl
from chatmesh.auth import generate_keypair
from chatmesh.edge_config import EdgeTls, render_local
from chatmesh.grpc_server import mesh_channel
from chatmesh.isolation import IsolatedStores
from chatmesh.kafka_io import DEFAULT_BOOTSTRAP
from chatmesh.mesh.credentials import MeshTls
from chatmesh.mesh.pki import (
    CA_FILE,
    EDGE_CA_DIR,
    EDGE_DIR,
    issue_local_edge,
    issue_local_mesh,
)
from chatmesh.object_store import ObjectStoreSettings
from chatmesh.s3_client import allow_browser_origins, ensure_bucket, object_store_client
from chatmesh.schema.migrate import migrate_cassandra, migrate_postgres
from chatmesh.settings import DEFAULT_PG_DSN, DEFAULT_REDIS_URL, CassandraSettings
from notifysvc.providers.local.keys import (
    LocalProviderPorts,
    ensure_keys,
    notifysvc_env,
    provider_args,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
# Processes of a cluster that are not chatmesh services (no ops endpoint, no
# metrics): stores it runs itself, the edge proxy and local stand-ins.
NOT_SERVICES = frozenset({"redis", "kafka", "envoy", "push-providers", "devtools"})
NOT_SERVICE_PREFIXES = ("envoy-",)  # the edges after the first
WEB_ROOT = REPO_ROOT / "web" / "dist"  # the built web client (web/build)
MAKE_UP_PUSH_PORTS = LocalProviderPorts(fcm=9451, apns=9452, webpush=9453, control=9454)
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
KAFKA_STARTUP_TIMEOUT_S = 90.0
BUCKET_READY_TIMEOUT_S = 60.0  # a store that started may take a while to create buckets
# A laptop broker's heap: a few test topics, not a production load.
KAFKA_JVM_OPTIONS = ("-Xms256m", "-Xmx384m", "-XX:+UseG1GC")
# Internal client identities the local CA issues: operator commands, tests.
MESH_CLIENTS = ("ops", "tests")
# Every client of a local cluster connects from loopback: one address must
# be allowed as many handshakes as the tests and benchmarks open at once.
LOCAL_ADDRESS_HANDSHAKES = {
    "CHATMESH_HANDSHAKES_PER_ADDRESS_RATE": "2000",
    "CHATMESH_HANDSHAKES_PER_ADDRESS_BURST": "20000",
}


# Ports this process handed out: the kernel may offer a port again once its
# probe socket is closed, and two services of one cluster must never be
# given the same port before either has bound it.
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


@dataclass(frozen=True, slots=True)
class Ports:
    msgsvc: int = 50051
    sessionsvc: int = 50052
    presencesvc: int = 50053
    notifysvc: int = 50054
    gateway_ws: tuple[int, ...] = (8101, 8102)
    gateway_grpc: tuple[int, ...] = (50061, 50062)
    edge: int = 8080
    edge_tls: int = 8443
    edge_admin: int = 9901
    # Envoys 2..n (plaintext listener, admin), beside the first one above.
    edge_more: tuple[tuple[int, int], ...] = ()
    msgsvc_more: tuple[int, ...] = ()  # instances 2..n of msgsvc; ``msgsvc`` is the first
    fanout: tuple[int, ...] = (50055,)  # health ports of the fan-out workers
    redis: int = 16380  # only used with ``ClusterConfig.own_redis``
    kafka: int = 19192  # only used with ``ClusterConfig.own_kafka``
    kafka_controller: int = 19193
    # The local push providers (FCM, APNs, Web Push) and their control endpoint.
    push: LocalProviderPorts = MAKE_UP_PUSH_PORTS
    devtools: int = 8090  # the web client's files and dev tokens, behind the edge

    @property
    def msgsvc_all(self) -> tuple[int, ...]:
        return (self.msgsvc, *self.msgsvc_more)

    @classmethod
    def free(
        cls,
        gateways: int = 2,
        msgsvc_instances: int = 1,
        fanout_workers: int = 1,
        edges: int = 1,
    ) -> Ports:
        if msgsvc_instances < 1:
            raise ValueError(f"msgsvc_instances must be at least 1, got {msgsvc_instances}")
        if gateways < 1 or edges < 1:
            raise ValueError(f"need a gateway and an edge, got {gateways} and {edges}")
        return cls(
            msgsvc=free_port(),
            msgsvc_more=tuple(free_port() for _ in range(msgsvc_instances - 1)),
            fanout=tuple(free_port() for _ in range(fanout_workers)),
            redis=free_port(),
            kafka=free_port(),
            kafka_controller=free_port(),
            sessionsvc=free_port(),
            presencesvc=free_port(),
            notifysvc=free_port(),
            gateway_ws=tuple(free_port() for _ in range(gateways)),
            gateway_grpc=tuple(free_port() for _ in range(gateways)),
            edge=free_port(),
            edge_tls=free_port(),
            edge_admin=free_port(),
            edge_more=tuple((free_port(), free_port()) for _ in range(edges - 1)),
            push=LocalProviderPorts(
                fcm=free_port(), apns=free_port(), webpush=free_port(), control=free_port()
            ),
            devtools=free_port(),
        )


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    workdir: Path  # keys, logs and the rendered Envoy config
    key_prefix: str = "cm:"
    cassandra: CassandraSettings = field(
        default_factory=lambda: CassandraSettings.from_env(os.environ)
    )
    pg_dsn: str = DEFAULT_PG_DSN
    redis_url: str = DEFAULT_REDIS_URL
    # ``redis_url`` names one node of a Redis Cluster (never with own_redis).
    redis_cluster: bool = False
    kafka_bootstrap: str = DEFAULT_BOOTSTRAP
    # msgsvc's media; its bucket is created if missing.
    object_store: ObjectStoreSettings = field(
        default_factory=lambda: ObjectStoreSettings.from_env(os.environ)
    )
    ports: Ports = Ports()
    python: str = sys.executable
    # A private redis-server on ``ports.redis`` (data under ``workdir/redis``)
    # instead of ``redis_url``, so tests can crash Redis without hurting others.
    own_redis: bool = False
    # A private Kafka broker on ``ports.kafka`` instead of ``kafka_bootstrap``.
    own_kafka: bool = False
    # Every service's CHATMESH_LOG_LEVEL; None: the launcher's own, else INFO.
    log_level: str | None = None
    # More environment for every service process, over the cluster's own
    # (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``CHATMESH_MAX_CONNECTIONS``, ...); a
    # process's own settings (ports, ids) still win.
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def msgsvc_instances(self) -> int:
        return len(self.ports.msgsvc_all)

    @classmethod
    def on_free_ports(
        cls,
        stores: IsolatedStores,
        workdir: Path,
        name: str,
        *,
        own_redis: bool = False,
        own_kafka: bool = False,
        msgsvc_instances: int = 1,
        fanout_workers: int = 1,
        gateways: int = 2,
        edges: int = 1,
    ) -> ClusterConfig:
        """A cluster over throwaway stores, its Redis keys under its own prefix."""
        return cls(
            workdir=workdir,
            key_prefix=f"{stores.key_prefix}{name}:",
            cassandra=stores.cassandra,
            pg_dsn=stores.pg_dsn,
            redis_url=stores.redis_url,
            redis_cluster=stores.redis_cluster and not own_redis,
            kafka_bootstrap=stores.kafka_bootstrap,
            object_store=stores.object_store,
            ports=Ports.free(
                gateways=gateways,
                msgsvc_instances=msgsvc_instances,
                fanout_workers=fanout_workers,
                edges=edges,
            ),
            own_redis=own_redis,
            own_kafka=own_kafka,
        )


class ServiceProcess:
    """One service as a child process with its log in a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self._argv = argv
        self._env = env
        self.log_path = log_path
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self._popen = subprocess.Popen(
            self._argv,
            env=self._env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal goes to the launcher only
        )
        log.close()

    @property
    def pid(self) -> int:
        assert self._popen is not None
        return self._popen.pid

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited in time. Returns the exit code."""
        if self._popen is None:
            return None
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGTERM)
            try:
                self._popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
        return self._popen.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to clean up."""
        if self._popen is not None and self._popen.poll() is None:
            self._popen.kill()
            self._popen.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class LocalCluster:
    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.keys_dir = config.workdir / "keys"
        # The mesh CA and every identity's credentials (chatmesh.mesh.pki).
        self.tls_dir = config.workdir / "tls"
        # Each process's ops endpoint (/healthz, /readyz, /metrics), by process name.
        self.ops_ports: dict[str, int] = {}
        # Each service that uses Redis connects as its own ACL user
        # (chatmesh.redis_acl); the others get no user and no Redis address.
        self.redis_passwords = {
            service: secrets.token_hex(16) for service in redis_acl.service_rules(config.key_prefix)
        }
        self.processes: dict[str, ServiceProcess] = {}

    # -- addresses -----------------------------------------------------------

    @property
    def redis_url(self) -> str:
        """The Redis every service of this cluster uses."""
        if self.config.own_redis:
            return f"redis://127.0.0.1:{self.config.ports.redis}/0"
        return self.config.redis_url

    @property
    def kafka_bootstrap(self) -> str:
        """The Kafka every service of this cluster uses."""
        if self.config.own_kafka:
            return f"127.0.0.1:{self.config.ports.kafka}"
        return self.config.kafka_bootstrap

    @property
    def msgsvc_names(self) -> list[str]:
        """Process names of the msgsvc instances: ``msgsvc``, ``msgsvc2``, ..."""
        return [_msgsvc_name(i) for i in range(self.config.msgsvc_instances)]

    @property
    def fanout_names(self) -> list[str]:
        """Process names of the fan-out workers: ``fanout-1``, ``fanout-2``, ..."""
        return [f"fanout-{i}" for i in range(1, len(self.config.ports.fanout) + 1)]

    def grpc_addr(self, service: str) -> str:
        """``msgsvc`` is the first instance; ``msgsvc2`` and on the others."""
        if service in self.fanout_names:
            return f"127.0.0.1:{self.config.ports.fanout[self.fanout_names.index(service)]}"
        if service in self.msgsvc_names:
            return f"127.0.0.1:{self.config.ports.msgsvc_all[self.msgsvc_names.index(service)]}"
        return f"127.0.0.1:{getattr(self.config.ports, service)}"

    def ops_url(self, name: str, path: str = "/metrics") -> str:
        """The ops endpoint of a service process: ``/healthz``, ``/readyz`` or ``/metrics``."""
        return f"http://127.0.0.1:{self.ops_ports[name]}{path}"

    def gateway_id(self, number: int) -> str:
        """Gateways are numbered from 1; ids are unique per key prefix."""
        return f"gw{number}-{self.config.key_prefix.strip(':').replace(':', '-')}"

    def msgsvc_instance_id(self, name: str) -> str:
        return f"{name}-{self.config.key_prefix.strip(':').replace(':', '-')}"

    @property
    def edge_url(self) -> str:
        return f"ws://127.0.0.1:{self.config.ports.edge}/"

    @property
    def edge_urls(self) -> list[str]:
        """Every Envoy's plaintext client listener, the first one's first."""
        more = [f"ws://127.0.0.1:{port}/" for port, _ in self.config.ports.edge_more]
        return [self.edge_url, *more]

    @property
    def edge_names(self) -> list[str]:
        """Process names of the Envoys: ``envoy``, ``envoy-2``, ..."""
        return ["envoy", *(f"envoy-{i}" for i in range(2, len(self.config.ports.edge_more) + 2))]

    @property
    def edge_tls_url(self) -> str:
        return f"wss://127.0.0.1:{self.config.ports.edge_tls}/"

    @property
    def services(self) -> list[str]:
        """The chatmesh services among its processes, in start order."""
        return [
            n
            for n in self.processes
            if n not in NOT_SERVICES and not n.startswith(NOT_SERVICE_PREFIXES)
        ]

    @property
    def edge_origins(self) -> list[str]:
        """Origins of pages the edge serves (``/app/``), by either host name."""
        p = self.config.ports
        return [
            f"{scheme}://{host}:{port}"
            for host in ("127.0.0.1", "localhost")
            for scheme, port in (("http", p.edge), ("https", p.edge_tls))
        ]

    @property
    def push_control_url(self) -> str:
        """The local push providers' control endpoint (``notifysvc.providers.local.control``)."""
        return f"http://127.0.0.1:{self.config.ports.push.control}"

    @property
    def edge_ca_file(self) -> Path:
        """The CA certificate clients trust ``edge_tls_url`` by (and nothing else here)."""
        return self.tls_dir / EDGE_CA_DIR / CA_FILE

    def gateway_url(self, index: int) -> str:
        return f"ws://127.0.0.1:{self.config.ports.gateway_ws[index]}/"

    # -- lifecycle -----------------------------------------------------------

    def prepare(self) -> None:
        """Signing keys and schemas; idempotent."""
        if not (self.keys_dir / "jwt-public.pem").exists():
            generate_keypair(self.keys_dir)
        issue_local_mesh(self.tls_dir, clients=MESH_CLIENTS)
        issue_local_edge(self.tls_dir)
        if not self.config.own_redis:  # its own Redis gets the users at start
            self._create_redis_users()
        asyncio.run(migrate_postgres(self.config.pg_dsn))
        migrate_cassandra(self.config.cassandra)
        asyncio.run(_ensure_bucket(self.config.object_store, self.edge_origins))

    def _redis_user_specs(self) -> list[list[str]]:
        prefix = self.config.key_prefix
        return [
            [
                redis_acl.user_name(prefix, service),
                "on",
                f">{self.redis_passwords[service]}",
                "resetkeys",
                "resetchannels",
                *rules.split(),
            ]
            for service, rules in redis_acl.service_rules(prefix).items()
        ]

    @property
    def redis_cluster(self) -> bool:
        return self.config.redis_cluster and not self.config.own_redis

    def ensure_redis_users(self) -> None:
        """Creates this cluster's Redis users again on every node that is up:
        a Redis Cluster node restarted since has lost them (they are made
        at run time, not read from its configuration)."""
        if not self.config.own_redis:
            self._create_redis_users()

    def _create_redis_users(self) -> None:
        nodes = _redis_nodes(self.redis_url, cluster=self.redis_cluster)
        for node in nodes:
            client = redis.Redis.from_url(node)
            try:
                for spec in self._redis_user_specs():
                    # The rules as ACL SETUSER words, as acl.conf holds them.
                    client.execute_command("ACL", "SETUSER", spec[0], "reset", *spec[1:])  # type: ignore[no-untyped-call]
            except redis.ConnectionError:
                # A cluster node that is down (not yet marked failed): it
                # gets the users at the next prepare() while it is up.
                if len(nodes) == 1:
                    raise
            finally:
                client.close()

    def _drop_redis_users(self) -> None:
        names = [redis_acl.user_name(self.config.key_prefix, s) for s in self.redis_passwords]
        try:
            nodes = _redis_nodes(self.redis_url, cluster=self.redis_cluster)
        except redis.RedisError:
            return  # gone with the Redis that held them
        for node in nodes:
            client = redis.Redis.from_url(node, socket_timeout=2.0)
            try:
                client.acl_deluser(*names)
            except redis.RedisError:
                pass  # gone with the Redis that held them
            finally:
                client.close()

    def service_redis_url(self, process: str) -> str:
        """The Redis URL a process connects with: its service's own user; the
        bare address for a service without one (which uses no Redis)."""
        service = _mesh_identity(process)
        if service not in self.redis_passwords:
            return self.redis_url
        url = urlsplit(self.redis_url)
        user = quote(redis_acl.user_name(self.config.key_prefix, service), safe="")
        netloc = f"{user}:{self.redis_passwords[service]}@{url.hostname}:{url.port}"
        return urlunsplit(url._replace(netloc=netloc))

    def define(self) -> None:
        """Every process of the cluster, none started yet; idempotent."""
        if self.processes:
            return
        c, p = self.config, self.config.ports
        # Stores first in ``processes``: started before the services, stopped
        # after them (``stop`` goes in reverse), so none of them drains
        # against a missing store.
        if c.own_redis:
            self._add_redis()
        if c.own_kafka:
            self._add_kafka()
        self._add("sessionsvc", ["-m", "sessionsvc"], {"GRPC_LISTEN": f"127.0.0.1:{p.sessionsvc}"})
        self._add(
            "presencesvc", ["-m", "presencesvc"], {"GRPC_LISTEN": f"127.0.0.1:{p.presencesvc}"}
        )
        push_keys = ensure_keys(c.workdir / "push", p.push)
        # APNs serves TLS: the local edge certificate (127.0.0.1) will do.
        self.processes["push-providers"] = ServiceProcess(
            "push-providers",
            [
                c.python,
                "-m",
                "notifysvc.providers.local",
                *provider_args(push_keys, p.push, self.tls_dir / EDGE_DIR),
            ],
            {**os.environ, "PYTHONUNBUFFERED": "1"},
            c.workdir / "logs" / "push-providers.log",
        )
        self._add(
            "notifysvc",
            ["-m", "notifysvc"],
            {
                "GRPC_LISTEN": f"127.0.0.1:{p.notifysvc}",
                # Its consumer group membership, kept across restarts.
                "INSTANCE_ID": f"{c.key_prefix}notifysvc-1",
                **notifysvc_env(push_keys, p.push, self.edge_ca_file),
            },
        )
        for name in self.msgsvc_names:
            self._add(
                name,
                ["-m", "msgsvc"],
                {
                    "GRPC_LISTEN": self.grpc_addr(name),
                    # Kept across restarts: a restarted msgsvc replays its route journal.
                    "INSTANCE_ID": self.msgsvc_instance_id(name),
                },
            )
        for i, (ws, grpc_port) in enumerate(zip(p.gateway_ws, p.gateway_grpc, strict=True), 1):
            self._add(
                f"gateway-{i}",
                ["-m", "gateway"],
                {
                    "GATEWAY_ID": self.gateway_id(i),
                    "WS_LISTEN": f"127.0.0.1:{ws}",
                    "GRPC_LISTEN": f"127.0.0.1:{grpc_port}",
                    # Spread the gateways over the msgsvc instances, so a
                    # test with two of each exercises both.
                    "MSGSVC_ADDR": self.grpc_addr(self.msgsvc_names[(i - 1) % c.msgsvc_instances]),
                },
            )
        self.processes["devtools"] = ServiceProcess(
            "devtools",
            [c.python, "-m", "chatmesh.devtools"],
            {
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "CHATMESH_LOG_LEVEL": c.log_level or os.environ.get("CHATMESH_LOG_LEVEL", "INFO"),
                "CHATMESH_PG_DSN": c.pg_dsn,
                "CHATMESH_JWT_PRIVATE_KEY_FILE": str(self.keys_dir / "jwt-private.pem"),
                "CHATMESH_WEB_ROOT": str(WEB_ROOT),
                "CHATMESH_DEVTOOLS_PORT": str(p.devtools),
            },
            c.workdir / "logs" / "devtools.log",
        )
        envoy_config = c.workdir / "envoy.yaml"
        envoy_config.write_text(
            render_local(
                p.edge,
                p.edge_admin,
                list(p.gateway_ws),
                tls=EdgeTls.from_dir(p.edge_tls, self.tls_dir / EDGE_DIR),
                web_port=p.devtools,
            )
        )
        self._add_envoy("envoy", envoy_config)
        for number, (port, admin) in enumerate(p.edge_more, 2):
            config_path = c.workdir / f"envoy-{number}.yaml"
            config_path.write_text(render_local(port, admin, list(p.gateway_ws)))
            self._add_envoy(f"envoy-{number}", config_path)
        for name in self.fanout_names:
            self._add(
                name,
                ["-m", "msgsvc.fanout"],
                {"GRPC_LISTEN": self.grpc_addr(name), "INSTANCE_ID": self.msgsvc_instance_id(name)},
            )

    def _add_envoy(self, name: str, config_path: Path) -> None:
        c = self.config
        self.processes[name] = ServiceProcess(
            name,
            [
                str(Path(c.python).parent / "envoy"),
                "-c",
                str(config_path),
                "--concurrency",
                "1",  # one worker: strict round robin across gateways
                "--disable-hot-restart",  # never share memory with another Envoy on the host
                "--log-level",
                "warning",
            ],
            dict(os.environ),
            c.workdir / "logs" / f"{name}.log",
        )

    def start(self) -> None:
        self.define()
        if self.config.own_redis:
            self.processes["redis"].start()
            self.wait_healthy("redis")
        if self.config.own_kafka:
            self.processes["kafka"].start()
            self.wait_healthy("kafka", timeout_s=KAFKA_STARTUP_TIMEOUT_S)
        self.prepare()
        self.processes["push-providers"].start()
        self.wait_healthy("push-providers")
        backends = [
            "sessionsvc",
            "presencesvc",
            "notifysvc",
            *self.msgsvc_names,
            *self.fanout_names,
        ]
        for name in backends:
            self.processes[name].start()
        for name in backends:
            self.wait_healthy(name)
        for name in self.processes:
            if name.startswith("gateway-"):
                self.processes[name].start()
        for name in self.processes:
            if name.startswith("gateway-"):
                self.wait_healthy(name)
        self.processes["devtools"].start()
        self.wait_healthy("devtools")
        for name in self.edge_names:
            self.processes[name].start()
        for name in self.edge_names:
            self.wait_healthy(name)

    def launch(self, names: list[str]) -> None:
        """Starts processes without waiting for them: every service must come
        up (unready) whatever is running already, and heal by itself."""
        self.define()
        for name in names:
            self.processes[name].start()

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self.processes[name].stop()
        if self.processes and not self.config.own_redis:
            self._drop_redis_users()

    @classmethod
    @contextmanager
    def running(cls, config: ClusterConfig) -> Iterator[LocalCluster]:
        """Started on entry, every process stopped on exit (also after a failed start)."""
        cluster = cls(config)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()

    def restart(self, name: str) -> None:
        self.processes[name].start()
        self.wait_healthy(name)

    def _add(self, name: str, args: list[str], settings: dict[str, str]) -> None:
        c = self.config
        env = dict(os.environ)
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "CHATMESH_LOG_LEVEL": c.log_level or os.environ.get("CHATMESH_LOG_LEVEL", "INFO"),
                "CHATMESH_KEY_PREFIX": c.key_prefix,
                "CHATMESH_REDIS_URL": self.service_redis_url(name),
                "CHATMESH_REDIS_CLUSTER": "true" if self.redis_cluster else "false",
                "CHATMESH_PG_DSN": c.pg_dsn,
                "CHATMESH_CASSANDRA_HOSTS": ",".join(c.cassandra.hosts),
                "CHATMESH_CASSANDRA_PORT": str(c.cassandra.port),
                "CHATMESH_CASSANDRA_KEYSPACE": c.cassandra.keyspace,
                "CHATMESH_CASSANDRA_CONSISTENCY": c.cassandra.consistency,
                "CHATMESH_CASSANDRA_REPLICATION": c.cassandra.replication,
                "CHATMESH_CASSANDRA_LOCAL_DC": c.cassandra.local_dc or "",
                "CHATMESH_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
                "CHATMESH_MSGSVC_ADDR": self.grpc_addr("msgsvc"),
                "CHATMESH_SESSIONSVC_ADDR": self.grpc_addr("sessionsvc"),
                "CHATMESH_PRESENCESVC_ADDR": self.grpc_addr("presencesvc"),
                "CHATMESH_JWT_PUBLIC_KEY_FILE": str(self.keys_dir / "jwt-public.pem"),
                "CHATMESH_MESH_TLS_DIR": str(self.tls_dir / "service" / _mesh_identity(name)),
            }
        )
        if _mesh_identity(name) not in self.redis_passwords:
            # Nor one inherited from this shell: a service without a Redis
            # user must not come to depend on Redis unnoticed.
            del env["CHATMESH_REDIS_URL"]
        # Only msgsvc keeps media, so only it gets the store and its keys.
        for key, value in c.object_store.to_env().items():
            if _mesh_identity(name) == "msgsvc":
                env[key] = value
            else:
                env.pop(key, None)
        env.update(LOCAL_ADDRESS_HANDSHAKES)
        env.update(c.env)
        self.ops_ports[name] = free_port()
        env["CHATMESH_OPS_LISTEN"] = f"127.0.0.1:{self.ops_ports[name]}"
        env.update({f"CHATMESH_{k}": v for k, v in settings.items()})
        self.processes[name] = ServiceProcess(
            name, [c.python, *args], env, c.workdir / "logs" / f"{name}.log"
        )

    def _add_redis(self) -> None:
        c = self.config
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server not found; deploy/local/backing.sh up installs it")
        data_dir = c.workdir / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        # Same argv on every (re)start: same port, same data dir, so a restart
        # replays the AOF the previous process wrote.
        self.processes["redis"] = ServiceProcess(
            "redis",
            [
                server,
                "--port",
                str(c.ports.redis),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(data_dir),
                "--daemonize",
                "no",  # a child we can signal, not a detached daemon
                "--logfile",
                "",  # stdout, which ServiceProcess sends to logs/redis.log
                # Every write is in the AOF and fsynced before Redis replies,
                # so a SIGKILL loses nothing acknowledged (see
                # docs/decisions/0007-redis-durability.md); snapshots would
                # only duplicate that.
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                # The services' users, given at every start: a restarted
                # Redis knows them before any service reconnects.
                *[arg for spec in self._redis_user_specs() for arg in ("--user", *spec)],
            ],
            dict(os.environ),
            c.workdir / "logs" / "redis.log",
        )

    def _add_kafka(self) -> None:
        """A single-node KRaft broker of this cluster's own, formatted once."""
        c = self.config
        data_dir = c.workdir / "kafka" / "data"
        broker = LocalKafka.resolved(c.workdir / "kafka" / "logs")
        properties = c.workdir / "kafka" / "server.properties"
        properties.write_text(kafka_properties(c.ports.kafka, c.ports.kafka_controller, data_dir))
        broker.format_once(properties, data_dir)
        self.processes["kafka"] = ServiceProcess(
            "kafka", broker.argv(properties), dict(os.environ), c.workdir / "logs" / "kafka.log"
        )

    # -- mesh clients ----------------------------------------------------------

    def client_tls(self, client: str = "tests") -> MeshTls:
        """Credentials of an internal client identity (``ops`` or ``tests``)."""
        return MeshTls(self.tls_dir / "client" / client)

    def channel(self, service: str, client: str = "tests") -> grpc.aio.Channel:
        """A mesh channel to one of this cluster's processes, as an internal client."""
        return mesh_channel(
            self.client_tls(client), self.grpc_addr(service), _mesh_identity(service)
        )

    # -- health --------------------------------------------------------------

    def wait_healthy(self, name: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        process = self.processes[name]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not process.running():
                raise RuntimeError(f"{name} exited during startup:\n{process.log_tail()}")
            if self._healthy(name):
                return
            time.sleep(0.1)
        raise TimeoutError(f"{name} not healthy after {timeout_s} s:\n{process.log_tail()}")

    def _healthy(self, name: str) -> bool:
        p = self.config.ports
        if name == "redis":
            return _redis_pings(self.redis_url)
        if name == "kafka":
            return _kafka_answers(self.kafka_bootstrap)
        if name == "envoy":
            return _http_ok(f"http://127.0.0.1:{p.edge_admin}/ready")
        if name.startswith("envoy-"):
            admin = p.edge_more[int(name.split("-")[1]) - 2][1]
            return _http_ok(f"http://127.0.0.1:{admin}/ready")
        if name == "devtools":
            return _http_ok(f"http://127.0.0.1:{p.devtools}/dev/healthz")
        if name == "push-providers":
            return _http_ok(f"http://127.0.0.1:{p.push.control}/pushes")
        if name.startswith("gateway-"):
            index = int(name.split("-")[1]) - 1
            return _http_ok(f"http://127.0.0.1:{p.gateway_ws[index]}/healthz") and _grpc_serving(
                self.client_tls("ops"), f"127.0.0.1:{p.gateway_grpc[index]}", "gateway"
            )
        return _grpc_serving(self.client_tls("ops"), self.grpc_addr(name), _mesh_identity(name))


async def _ensure_bucket(settings: ObjectStoreSettings, origins: list[str]) -> None:
    # A store just started may pass its health check before it can create a
    # bucket (SeaweedFS's S3 gateway waits for its filer): timeouts and 5xx
    # answers are retried for a while rather than failing the whole start.
    deadline = time.monotonic() + BUCKET_READY_TIMEOUT_S
    while True:
        try:
            async with object_store_client(settings) as client:
                await ensure_bucket(client, settings.bucket)
                # The web client PUTs and GETs media with pre-signed URLs,
                # straight from its page on the edge's origin to the store's.
                await allow_browser_origins(client, settings.bucket, origins)
            return
        except (BotoCoreError, ClientError) as exc:
            status = (
                exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if isinstance(exc, ClientError)
                else 0
            )
            if (isinstance(exc, ClientError) and status < 500) or time.monotonic() >= deadline:
                raise
            print(f"object store not ready yet ({exc}); retrying", file=sys.stderr)
            await asyncio.sleep(1.0)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _msgsvc_name(index: int) -> str:
    """``msgsvc`` for the first instance, as before there could be several."""
    return "msgsvc" if index == 0 else f"msgsvc{index + 1}"


def kafka_properties(port: int, controller_port: int, data_dir: Path) -> str:
    """``deploy/local/kafka/server.properties`` for a broker on ``port``:
    plaintext, on loopback, both broker and controller."""
    template = (REPO_ROOT / "deploy" / "local" / "kafka" / "server.properties").read_text()
    return (
        template.replace("@PORT@", str(port))
        .replace("@CONTROLLER_PORT@", str(controller_port))
        .replace("@DATA_DIR@", str(data_dir))
    )


@dataclass(frozen=True, slots=True)
class LocalKafka:
    """The Kafka jars ``deploy/local/backing.sh`` resolved, and the JDK they
    run on: formats a broker's storage and gives the command that runs it."""

    java: str
    classpath: str
    logs_dir: Path  # the broker's own log and the storage tool's

    @classmethod
    def resolved(cls, logs_dir: Path) -> LocalKafka:
        classpath_file = REPO_ROOT / ".local" / "kafka" / "classpath.txt"
        if not classpath_file.is_file():
            raise RuntimeError("Kafka is not resolved yet; deploy/local/backing.sh up does that")
        logs_dir.mkdir(parents=True, exist_ok=True)
        return cls(_java17(), classpath_file.read_text().strip(), logs_dir)

    def _java(self, main: str, *args: str, jvm: tuple[str, ...] = ()) -> list[str]:
        return [
            self.java,
            *jvm,
            f"-Dkafka.logs.dir={self.logs_dir}",
            f"-Dlog4j2.configurationFile={REPO_ROOT / 'deploy/local/kafka/log4j2.properties'}",
            "-cp",
            self.classpath,
            main,
            *args,
        ]

    def format_once(self, properties: Path, data_dir: Path, *options: str) -> None:
        """Formats ``data_dir`` as a new one-node cluster unless it holds one
        already. ``options`` go to ``StorageTool format`` (``--add-scram ...``)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        if (data_dir / "meta.properties").exists():
            return
        cluster_id = subprocess.run(
            self._java("kafka.tools.StorageTool", "random-uuid"),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[-1]
        subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(properties),
                *options,
            ),
            capture_output=True,
            check=True,
        )

    def argv(self, properties: Path) -> list[str]:
        return self._java("kafka.Kafka", str(properties), jvm=KAFKA_JVM_OPTIONS)


def _kafka_answers(bootstrap: str) -> bool:
    """True once the broker lists its topics (it is the controller too).
    Plaintext: it asks only a cluster's own broker, which runs plaintext
    (``deploy/local/kafka/server.properties``)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 1000})
    try:
        admin.list_topics(timeout=1.0)
    except KafkaException:
        return False
    return True


def _java17() -> str:
    """The JDK 17 Kafka runs on, as deploy/local/backing.sh picks it."""
    for candidate in (
        os.environ.get("CHATMESH_CASSANDRA_JAVA", ""),
        "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
        shutil.which("java") or "",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("no java found; deploy/local/backing.sh installs a JDK 17")


def _redis_nodes(url: str, *, cluster: bool) -> list[str]:
    """The URL of every node an ACL user must exist on: in a cluster, each
    primary and replica (a replica becomes the primary when its fails)."""
    if not cluster:
        return [url]
    client = redis.Redis.from_url(url, socket_timeout=2.0)
    try:
        lines = client.execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
    finally:
        client.close()
    text = lines.decode() if isinstance(lines, bytes) else str(lines)
    parts = urlsplit(url)
    nodes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or "fail" in fields[2].split(","):
            continue
        host_port = fields[1].split("@", 1)[0]  # ip:port@bus-port[,hostname]
        nodes.append(urlunsplit(parts._replace(netloc=host_port)))
    return nodes


def _redis_pings(url: str) -> bool:
    """True once Redis answers PING (while it replays its AOF it replies LOADING)."""
    client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _mesh_identity(process: str) -> str:
    """The service a process's certificate names: every msgsvc instance is
    ``msgsvc``, every gateway ``gateway``, every fan-out worker ``fanout``."""
    if process.startswith("gateway"):
        return "gateway"
    if process.startswith("fanout"):
        return "fanout"
    if process.startswith("msgsvc"):
        return "msgsvc"
    return process


def _grpc_serving(tls: MeshTls, addr: str, service: str) -> bool:
    with tls.sync_channel(addr, service) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1.0
            )
        except grpc.RpcError:
            return False
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def _up(args: argparse.Namespace) -> None:
    workdir = REPO_ROOT / ".local" / "cluster"
    cluster = LocalCluster(ClusterConfig(workdir=workdir))
    try:
        cluster.start()

        async def demo_users() -> None:
            conn = await asyncpg.connect(cluster.config.pg_dsn)
            try:
                for user in ("alice", "bob"):
                    await conn.execute(
                        "INSERT INTO users (user_id, display_name) VALUES ($1, $1)"
                        " ON CONFLICT DO NOTHING",
                        user,
                    )
                    # The devices the printed commands use; others come from
                    # `python -m chatmesh mint-token`, which registers them.
                    await conn.executemany(
                        "INSERT INTO devices (user_id, device_id) VALUES ($1, $2)"
                        " ON CONFLICT DO NOTHING",
                        [(user, device) for device in ("phone", "laptop")],
                    )
            finally:
                await conn.close()

        asyncio.run(demo_users())
        p = cluster.config.ports
        print(
            "\nchatmesh is up.\n"
            f"  web chat (pick any user name):   http://127.0.0.1:{p.edge}/app/\n"
            f"  clients (WebSocket, via Envoy):  {cluster.edge_url}\n"
            f"  clients (TLS, via Envoy):        {cluster.edge_tls_url}\n"
            f"    trusting the edge CA:          {cluster.edge_ca_file}\n"
            + "".join(
                f"  gateway {i} (direct):             ws://127.0.0.1:{port}/\n"
                for i, port in enumerate(p.gateway_ws, 1)
            )
            + "".join(
                f"  {name + ' gRPC:':<18}{cluster.grpc_addr(name)}\n"
                for name in cluster.msgsvc_names
            )
            + f"  sessionsvc gRPC:  127.0.0.1:{p.sessionsvc}\n"
            f"  presencesvc gRPC: 127.0.0.1:{p.presencesvc}\n"
            f"  notifysvc gRPC:   127.0.0.1:{p.notifysvc}\n"
            f"  object store:     {cluster.config.object_store.endpoint}"
            f" (S3, bucket {cluster.config.object_store.bucket})\n"
            f"  dev tokens:       POST http://127.0.0.1:{p.edge}/dev/token"
            ' {"user_id": "alice", "device_id": "web"}\n'
            f"  Envoy admin:      http://127.0.0.1:{p.edge_admin}/\n"
            f"  push providers:   http://127.0.0.1:{p.push.control}/pushes"
            " (what reached the local FCM, APNs and Web Push)\n"
            + "".join(
                f"  {name + ' ops:':<18}{cluster.ops_url(name, '/')}{{healthz,readyz,metrics}}\n"
                for name in cluster.ops_ports
            )
            + f"  logs:             {workdir / 'logs'}\n"
            "  demo users:       alice, bob\n"
            "  a token:          .venv/bin/python -m chatmesh mint-token alice phone\n"
            "  chat by hand:     .venv/bin/python -m chatmesh.client alice phone\n"
            "  ... over TLS:     .venv/bin/python -m chatmesh.client alice phone"
            f" --url {cluster.edge_tls_url}\n"
            "Ctrl-C stops every process.",
            flush=True,
        )
        stop = False

        def request_stop(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        while not stop:
            for name, process in cluster.processes.items():
                if not process.running():
                    print(f"{name} exited:\n{process.log_tail()}", file=sys.stderr)
                    stop = True
            time.sleep(0.5)
    finally:
        print("stopping...", flush=True)
        cluster.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chatmesh.devcluster")
    commands = parser.add_subparsers(required=True)
    commands.add_parser("up", help="start every service and gateway; Ctrl-C stops").set_defaults(
        run=_up
    )
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
