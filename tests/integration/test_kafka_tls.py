"""The message log over SASL_SSL, configured by the environment alone.

Against a private broker (``tests.support.private_kafka``) whose only
client listener is SASL_SSL: the settings msgsvc and the fan-out workers
read create the topic, append a record and read it back; a wrong password,
a plaintext client and a client that does not trust the broker's CA are
refused, and our errors say which of these it was.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator, Mapping

import pytest

from chatmesh.errors import Unavailable
from chatmesh.kafka_io import KafkaSettings, LogConsumer, LogProducer, LogRecord, ensure_topic
from msgsvc.settings import MsgsvcSettings
from tests.support.private_kafka import SCRAM_MECHANISM, PrivateKafka, sasl_ssl_kafka
from tests.support.store_pki import StorePki, issue_store_pki

# Refusals show within a second; the tests give up on a refused client
# after this, not after the services' own patient deadlines.
REFUSED_WITHIN_S = 3.0
READ_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> StorePki:
    return issue_store_pki(tmp_path_factory.mktemp("kafka-pki"))


@pytest.fixture(scope="module")
def broker(pki: StorePki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateKafka]:
    with sasl_ssl_kafka(
        pki,
        tmp_path_factory.mktemp("kafka"),
        user="msgsvc",
        password=secrets.token_urlsafe(16),
        scram_user="fanout",
        scram_password=secrets.token_urlsafe(16),
    ) as running:
        yield running


def _env(broker: PrivateKafka, pki: StorePki, **overrides: str) -> dict[str, str]:
    """What a deployment sets: the protocol, the CA, a mechanism and a user."""
    env = {
        "CHATMESH_MESH_TLS_DIR": "unused",
        "CHATMESH_KEY_PREFIX": f"tls{secrets.token_hex(3)}:",
        "CHATMESH_KAFKA_BOOTSTRAP": broker.bootstrap,
        "CHATMESH_MESSAGE_TOPIC_PARTITIONS": "2",
        "CHATMESH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "CHATMESH_KAFKA_CA_FILE": str(pki.ca_file),
        "CHATMESH_KAFKA_SASL_MECHANISM": "PLAIN",
        "CHATMESH_KAFKA_USERNAME": broker.user,
        "CHATMESH_KAFKA_PASSWORD": broker.password,
    }
    env.update({f"CHATMESH_{k}": v for k, v in overrides.items()})
    return env


def _settings(env: Mapping[str, str]) -> KafkaSettings:
    return MsgsvcSettings.from_env(env).kafka


async def _read_one(consumer: LogConsumer) -> list[LogRecord]:
    records: list[LogRecord] = []
    # The first batches wait for the group to form and the partitions to be assigned.
    for _ in range(int(READ_TIMEOUT_S)):
        records = await consumer.batch(10, 1.0)
        if records:
            break
    return records


@pytest.mark.parametrize("mechanism", ["PLAIN", SCRAM_MECHANISM])
async def test_a_record_goes_through_the_log_over_sasl_ssl(
    broker: PrivateKafka, pki: StorePki, mechanism: str
) -> None:
    user, password = (
        (broker.user, broker.password)
        if mechanism == "PLAIN"
        else (broker.scram_user, broker.scram_password)
    )
    settings = _settings(
        _env(
            broker,
            pki,
            KAFKA_SASL_MECHANISM=mechanism,
            KAFKA_USERNAME=user,
            KAFKA_PASSWORD=password,
        )
    )
    assert settings.security.protocol == "SASL_SSL"
    await ensure_topic(settings)
    await ensure_topic(settings)  # exists already: not an error

    producer = LogProducer(settings, client_id="tls-producer")
    try:
        await producer.append(settings.topic, b"conv-1", b"over sasl_ssl", [("kind", b"test")])
    finally:
        await producer.close()

    consumer = LogConsumer(settings, f"tls-{secrets.token_hex(3)}", client_id="tls-consumer")
    try:
        await consumer.start()
        await consumer.ping()
        records = await _read_one(consumer)
        await consumer.commit(records)
    finally:
        await consumer.close()
    assert [(r.key, r.value, r.headers) for r in records] == [
        (b"conv-1", b"over sasl_ssl", (("kind", b"test"),))
    ]


async def test_a_wrong_password_is_refused(broker: PrivateKafka, pki: StorePki) -> None:
    settings = _settings(_env(broker, pki, KAFKA_PASSWORD="not-the-password"))
    with pytest.raises(Unavailable, match="Invalid username or password"):
        await ensure_topic(settings, timeout_s=REFUSED_WITHIN_S)


async def test_a_plaintext_client_is_refused(broker: PrivateKafka) -> None:
    settings = _settings(
        {"CHATMESH_MESH_TLS_DIR": "unused", "CHATMESH_KAFKA_BOOTSTRAP": broker.bootstrap}
    )
    assert settings.security.protocol == "PLAINTEXT"
    # The TLS listener hangs up on the first bytes, which are no handshake:
    # the client's opening request (ApiVersion) is all it gets to send.
    with pytest.raises(Unavailable, match=r"connection closed by peer.*APIVERSION_QUERY"):
        await ensure_topic(settings, timeout_s=REFUSED_WITHIN_S)


async def test_a_client_not_trusting_the_brokers_ca_refuses_it(
    broker: PrivateKafka, pki: StorePki
) -> None:
    settings = _settings(_env(broker, pki, KAFKA_CA_FILE=str(pki.untrusted_ca_file)))
    with pytest.raises(Unavailable, match="certificate verify failed"):
        await ensure_topic(settings, timeout_s=REFUSED_WITHIN_S)


async def test_a_refused_producer_logs_why_and_fails_the_append(
    broker: PrivateKafka, pki: StorePki, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(_env(broker, pki, KAFKA_PASSWORD="not-the-password"))
    producer = LogProducer(settings, client_id="refused-producer")
    try:
        with caplog.at_level(logging.WARNING, logger="chatmesh.kafka"):
            with pytest.raises(Unavailable, match="did not take the record"):
                await producer.append(settings.topic, b"k", b"never stored")
    finally:
        await producer.close(timeout_s=0)
    # ``fields`` is what chatmesh.logs merges into each JSON line.
    causes = [
        r.__dict__["fields"]["cause"] for r in caplog.records if r.msg == "kafka broker trouble"
    ]
    assert any("Invalid username or password" in cause for cause in causes), causes
    # Once per cause, not once per reconnect.
    assert len(causes) == len(set(causes))


async def test_a_refused_consumers_ping_names_the_cause(
    broker: PrivateKafka, pki: StorePki
) -> None:
    settings = _settings(_env(broker, pki, KAFKA_CA_FILE=str(pki.untrusted_ca_file)))
    consumer = LogConsumer(settings, "refused", client_id="refused-consumer")
    try:
        await consumer.start()
        # The fan-out worker reads all the time; reading serves the callbacks
        # that carry the cause.
        assert await consumer.batch(1, 1.0) == []
        with pytest.raises(Unavailable, match=r"no broker answered.*certificate verify failed"):
            await consumer.ping()
    finally:
        await consumer.close()
