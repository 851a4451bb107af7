"""Helpers of the notification and event tests: names for Kafka topics, a topic reader, notify()."""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.test import TestCase

from notifications import services


def unique_name(prefix: str = "test") -> str:
    """Topics and consumer groups of one test: the session broker is shared by two whole runs in CI."""
    return f"{prefix}-{uuid.uuid4().hex}"


def read_topic(
    bootstrap: str, topic: str, *, expect: int, timeout: float = 20.0, settle: float = 1.5
) -> list:
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
    records: list = []
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


def notify_now(**kwargs: Any) -> Any:
    """`services.notify` in a transaction that commits: its after-commit work (cache, email) runs."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return services.notify(**kwargs)
