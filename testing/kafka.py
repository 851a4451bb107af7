"""Clients of the tests' Kafka broker (`testing.stack.Kafka`, the `kafka_broker` fixture): names of
the test's own, messages sent as another service would, a topic read back.

Every test that talks to a broker uses its own topics and consumer groups: the session broker is
shared by the two whole runs of CI.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

#: `(key, value)`, or `(key, value, headers)` with headers as `[(name, bytes)]`.
Message = tuple[bytes | None, bytes] | tuple[bytes | None, bytes, list[tuple[str, bytes]]]


def unique_name(prefix: str = "test") -> str:
    """A topic or consumer group of one test."""
    return f"{prefix}-{uuid.uuid4().hex}"


def produce(
    bootstrap: str,
    topic: str,
    messages: Iterable[Message],
    *,
    partition: int | None = None,
    max_request_size: int | None = None,
) -> None:
    """Send the messages to `topic`, in order, each taken by the broker (`acks=all`) before the next.

    `partition=0` keeps them in one order for a reader, as one producer's messages of one key
    would be; `max_request_size` makes room for a message larger than the client's default 1 MB.
    """
    from kafka import KafkaProducer

    options: dict[str, Any] = {} if max_request_size is None else {"max_request_size": max_request_size}
    producer = KafkaProducer(bootstrap_servers=[bootstrap], acks="all", **options)
    try:
        for key, value, *headers in messages:
            producer.send(
                topic, key=key, value=value, headers=headers[0] if headers else None, partition=partition
            ).get(timeout=10)
    finally:
        producer.close(timeout=5)


def read_topic(
    bootstrap: str, topic: str, *, expect: int, timeout: float = 20.0, settle: float = 1.5
) -> list[Any]:
    """Every record of `topic`: waits for `expect` of them, then `settle` seconds more for any extra.

    No consumer group (partitions assigned locally), so no ~3 s group join per read.
    """
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=[bootstrap],
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(records) < expect:
            for batch in consumer.poll(timeout_ms=300).values():
                records.extend(batch)
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            for batch in consumer.poll(timeout_ms=300).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records
