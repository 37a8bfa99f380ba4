"""Kafka client benchmark: confluent-kafka against aiokafka, the way msgsvc would use them.

    .venv/bin/python -m bench.kafka_clients [--bootstrap 127.0.0.1:19092] [--messages 20000]

Against the local broker (``deploy/local/backing.sh up``), for each client,
from one asyncio process with uvloop:

- ``burst``: ``--messages`` records of 200 bytes keyed by 100 conversations,
  all produced at once with acks=all and idempotence, each awaited;
- ``paced``: ``--paced`` records at ``--rate`` per second, each awaited on its
  own (the latency a sender's ack would wait for);
- ``consume``: the burst read back in a consumer group, committing offsets
  after every batch.

Reports records per second, CPU seconds per 1,000 records (the whole process:
librdkafka's threads included) and latency percentiles. Bounded; prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from bench.common import latency_summary

PARTITIONS = 8
KEYS = 100
BODY = b"x" * 200


def _topic(client: str) -> str:
    return f"bench-{client}-{uuid.uuid4().hex[:6]}"


def _create_topic(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        future.result(30)


class ConfluentProducer:
    """librdkafka's producer, with a thread serving its delivery callbacks
    into the event loop."""

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka import Producer

        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 1,
            }
        )
        self._loop = asyncio.get_running_loop()
        self._running = True
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while self._running:
            self._producer.poll(0.05)

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        done: asyncio.Future[None] = self._loop.create_future()

        def delivered(error: Any, _: Any) -> None:
            if error is None:
                self._loop.call_soon_threadsafe(_resolve, done, None)
            else:
                self._loop.call_soon_threadsafe(_resolve, done, RuntimeError(str(error)))

        self._producer.produce(topic, value, key, on_delivery=delivered)
        await done

    async def close(self) -> None:
        await asyncio.to_thread(self._producer.flush, 10)
        self._running = False
        self._poller.join()


def _resolve(future: asyncio.Future[None], outcome: Exception | None) -> None:
    if future.done():
        return
    if outcome is None:
        future.set_result(None)
    else:
        future.set_exception(outcome)


class AioProducer:
    def __init__(self, bootstrap: str) -> None:
        from aiokafka import AIOKafkaProducer

        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=1
        )

    async def start(self) -> None:
        await self._producer.start()

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        await self._producer.send_and_wait(topic, value, key=key)

    async def close(self) -> None:
        await self._producer.stop()


Consumed = tuple[int, tuple[float, float] | None]  # records, (cpu, wall) at the first one


async def _confluent_consume(bootstrap: str, topic: str, count: int) -> Consumed:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    started = None
    try:
        while seen < count:
            batch = await asyncio.to_thread(consumer.consume, 500, 0.2)
            records = [m for m in batch if m.error() is None]
            if records and started is None:
                started = (time.process_time(), time.perf_counter())
            seen += len(records)
            if records:
                await asyncio.to_thread(consumer.commit, asynchronous=False)
    finally:
        await asyncio.to_thread(consumer.close)
    return seen, started


async def _aiokafka_consume(bootstrap: str, topic: str, count: int) -> Consumed:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    started = None
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            got = sum(len(records) for records in batches.values())
            if got and started is None:
                started = (time.process_time(), time.perf_counter())
            seen += got
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
    return seen, started


async def _measure(
    send: Callable[[str, bytes, bytes], Awaitable[None]],
    consume: Callable[[str, int], Awaitable[Consumed]],
    topic: str,
    messages: int,
    paced: int,
    rate: float,
) -> dict[str, object]:
    keys = [f"conversation-{i}".encode() for i in range(KEYS)]
    await send(topic, keys[0], BODY)  # connects, takes the producer id

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(send(topic, keys[i % KEYS], BODY) for i in range(messages)))
    burst_cpu, burst_s = time.process_time() - cpu, time.perf_counter() - wall

    latencies: list[float] = []

    async def one(i: int) -> None:
        started = time.perf_counter()
        await send(topic, keys[i % KEYS], BODY)
        latencies.append(time.perf_counter() - started)

    tasks = []
    start = time.perf_counter()
    cpu = time.process_time()
    for i in range(paced):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(i)))
    await asyncio.gather(*tasks)
    paced_cpu = time.process_time() - cpu

    consumed, first = await consume(topic, messages + paced + 1)
    assert first is not None
    # From the first record on: joining the group is not the client's cost.
    consume_cpu = time.process_time() - first[0]
    consume_s = time.perf_counter() - first[1]
    return {
        "burst": {
            "records": messages,
            "records_per_s": round(messages / burst_s),
            "cpu_ms_per_1000": round(burst_cpu / messages * 1e6, 1),
        },
        "paced": {
            "records": paced,
            "rate_per_s": rate,
            "cpu_ms_per_1000": round(paced_cpu / paced * 1e6, 1),
            "latency": latency_summary(latencies),
        },
        "consume": {
            "records": consumed,
            "records_per_s": round(consumed / consume_s),
            "cpu_ms_per_1000": round(consume_cpu / consumed * 1e6, 1),
        },
    }


async def _run(bootstrap: str, messages: int, paced: int, rate: float) -> dict[str, object]:
    results: dict[str, object] = {}

    topic = _topic("confluent")
    _create_topic(bootstrap, topic)
    confluent = ConfluentProducer(bootstrap)
    try:
        results["confluent-kafka"] = await _measure(
            confluent.send,
            lambda t, n: _confluent_consume(bootstrap, t, n),
            topic,
            messages,
            paced,
            rate,
        )
    finally:
        await confluent.close()

    topic = _topic("aiokafka")
    _create_topic(bootstrap, topic)
    aio = AioProducer(bootstrap)
    await aio.start()
    try:
        results["aiokafka"] = await _measure(
            aio.send,
            lambda t, n: _aiokafka_consume(bootstrap, t, n),
            topic,
            messages,
            paced,
            rate,
        )
    finally:
        await aio.close()
    return results


def main() -> None:
    import aiokafka
    import confluent_kafka

    parser = argparse.ArgumentParser(prog="python -m bench.kafka_clients")
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--paced", type=int, default=3_000)
    parser.add_argument("--rate", type=float, default=500.0)
    args = parser.parse_args()
    results = uvloop.run(_run(args.bootstrap, args.messages, args.paced, args.rate))
    print(
        json.dumps(
            {
                "benchmark": "kafka_clients",
                "partitions": PARTITIONS,
                "record_bytes": len(BODY),
                "producer": "acks=all, idempotent, linger.ms=1",
                "versions": {
                    "confluent-kafka": confluent_kafka.version()[0],
                    "librdkafka": confluent_kafka.libversion()[0],
                    "aiokafka": aiokafka.__version__,
                },
                "results": results,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
