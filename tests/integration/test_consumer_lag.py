"""The fan-out worker's consumer lag, against real Kafka: records not yet committed."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from chatmesh.kafka_io import KafkaSettings, LogConsumer, LogProducer, ensure_topic, topic_name
from msgsvc.fanout.lag import LagReporter
from tests.conftest import Stores

RECORDS = 5


@pytest.fixture
async def topic(stores: Stores, key_prefix: str) -> KafkaSettings:
    settings = KafkaSettings(
        stores.kafka_bootstrap, topic_name(key_prefix, "lag"), 2, 1, stores.kafka_security
    )
    await ensure_topic(settings)
    return settings


@pytest.fixture
async def consumer(topic: KafkaSettings) -> AsyncIterator[LogConsumer]:
    source = LogConsumer(topic, f"lag-{secrets.token_hex(3)}", client_id="t")
    await source.start()
    yield source
    await source.close()


def _gauge(partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "chatmesh_fanout_consumer_lag_records", {"partition": str(partition)}
    )


async def test_lag_is_what_is_read_but_not_committed_per_partition(
    topic: KafkaSettings, consumer: LogConsumer
) -> None:
    producer = LogProducer(topic, client_id="lag-test")
    try:
        for i in range(RECORDS):
            # One key: every record in one partition, in order.
            await producer.append(topic.topic, b"conversation", f"record {i}".encode())
    finally:
        await producer.close()
    records = []
    deadline = asyncio.get_running_loop().time() + 30
    while len(records) < RECORDS:
        assert asyncio.get_running_loop().time() < deadline, f"only {len(records)} records"
        records.extend(await consumer.batch(RECORDS, 0.5))
    partition = records[0].partition
    other = 1 - partition

    assert await asyncio.to_thread(consumer.lag) == {partition: RECORDS, other: 0}

    await consumer.commit(records[:3])
    reporter = LagReporter(consumer.lag)
    await reporter.report_once()
    assert _gauge(partition) == RECORDS - 3
    assert _gauge(other) == 0

    await consumer.commit(records)
    await reporter.report_once()
    assert _gauge(partition) == 0
