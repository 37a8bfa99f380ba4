"""A private single-node Kafka that speaks only SASL over TLS.

The broker ``chatmesh.devcluster`` runs (the jars ``deploy/local/backing.sh``
resolved, ``deploy/local/kafka/server.properties``), with its one client
listener switched to SASL_SSL: a server certificate from the test CA for
``localhost`` and 127.0.0.1, no client certificates asked for, and users
who log in with PLAIN (their passwords in the listener's JAAS config) or
SCRAM-SHA-256 (their credentials written into the metadata log when the
storage is formatted). The controller listener stays plaintext on
loopback: nothing but the broker itself dials it.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from chatmesh.devcluster import LocalKafka, kafka_properties
from tests.support.store_pki import StorePki
from tests.support.tcp_proxy import free_port

# The JVM starts, elects itself and opens its listeners in about ten
# seconds on a quiet machine; two busy cores may take several times that.
STARTUP_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
SCRAM_MECHANISM = "SCRAM-SHA-256"
# The broker logs in to its own listener as this PLAIN user.
BROKER_USER = "broker"


@dataclass(frozen=True, slots=True)
class PrivateKafka:
    port: int
    user: str  # a PLAIN user
    password: str
    scram_user: str  # a SCRAM-SHA-256 user
    scram_password: str

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def _checked(password: str) -> str:
    """Backslashes would be read twice (properties, then JAAS), quotes end
    a JAAS value and commas a ``--add-scram`` one: the tests' passwords are
    ``secrets.token_urlsafe``, which has none of them."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", password):
        raise ValueError("passwords here are letters, digits, - and _ only")
    return password


def _sasl_ssl_listener(
    pki: StorePki, keystore: Path, *, port: int, controller_port: int, users: dict[str, str]
) -> str:
    """Appended to the template: in a properties file the last line of a key wins."""
    plain_users = " ".join(f'user_{name}="{_checked(pw)}"' for name, pw in users.items())
    return f"""
listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=SASL_SSL://127.0.0.1:{port}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
inter.broker.listener.name=SASL_SSL
sasl.enabled.mechanisms=PLAIN,{SCRAM_MECHANISM}
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=\\
org.apache.kafka.common.security.plain.PlainLoginModule required \\
username="{BROKER_USER}" password="{_checked(users[BROKER_USER])}" {plain_users};
listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config=\\
org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
ssl.truststore.type=PEM
ssl.truststore.location={pki.ca_file}
ssl.client.auth=none
"""


@contextmanager
def sasl_ssl_kafka(
    pki: StorePki,
    workdir: Path,
    *,
    user: str,
    password: str,
    scram_user: str,
    scram_password: str,
) -> Iterator[PrivateKafka]:
    port, controller_port = free_port(), free_port()
    data_dir = workdir / "data"
    broker = LocalKafka.resolved(workdir / "logs")
    # Kafka's PEM keystore is one file: the key (PKCS#8), then the chain.
    keystore = workdir / "server.pem"
    keystore.write_bytes(pki.server.key_file.read_bytes() + pki.server.cert_file.read_bytes())
    keystore.chmod(0o600)
    users = {BROKER_USER: password + "-broker", user: password}
    properties = workdir / "server.properties"
    properties.write_text(
        kafka_properties(port, controller_port, data_dir)
        + _sasl_ssl_listener(pki, keystore, port=port, controller_port=controller_port, users=users)
    )
    scram = f"{SCRAM_MECHANISM}=[name={scram_user},password={_checked(scram_password)}]"
    broker.format_once(properties, data_dir, "--add-scram", scram)
    with (workdir / "kafka.out").open("ab") as out:
        process = subprocess.Popen(broker.argv(properties), stdout=out, stderr=subprocess.STDOUT)
    running = PrivateKafka(port, user, password, scram_user, scram_password)
    try:
        _wait_serving(running, pki, process, broker.logs_dir / "server.log")
        yield running
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_serving(
    kafka: PrivateKafka, pki: StorePki, process: subprocess.Popen[bytes], log_path: Path
) -> None:
    """Until the broker answers a metadata request over SASL_SSL: its port
    opens before it has caught up with its metadata log. Asked with
    librdkafka's own settings, not chatmesh's, which the tests are about."""
    admin = AdminClient(
        {
            "bootstrap.servers": kafka.bootstrap,
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(pki.ca_file),
            "sasl.mechanism": "PLAIN",
            "sasl.username": kafka.user,
            "sasl.password": kafka.password,
            "log_level": 0,  # its reconnects while the broker starts are expected
        }
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kafka exited:\n{_tail(log_path)}")
        try:
            admin.list_topics(timeout=1.0)
            return
        except KafkaException:
            continue
    raise TimeoutError(f"kafka not serving on {kafka.port}:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
