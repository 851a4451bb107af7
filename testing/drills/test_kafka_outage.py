"""Drill 2: Kafka stopped while events are emitted, then started again.

Every API call succeeds while the broker is down; after it returns, every event stored in the outbox
arrives, and each `event_id` once in the consumer's view (a consumer drops the duplicates that
at-least-once delivery allows; the drill counts them too).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter

import pytest
from kafka import KafkaConsumer

from testing.stack import Stack, running_stack

pytestmark = pytest.mark.drill

TOPIC = "uploading_data"


def _sql(stack: Stack, query: str) -> list[str]:
    result = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(stack.postgres.port),
            "-U",
            "postgres",
            "-d",
            "service",
            "-Atc",
            query,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return [line for line in result.stdout.splitlines() if line]


def _event_ids(stack: Stack) -> set[str]:
    return set(_sql(stack, "SELECT id FROM notifications_outboxevent"))


def _backlog(stack: Stack) -> int:
    return int(_sql(stack, "SELECT count(*) FROM notifications_outboxevent WHERE published_at IS NULL")[0])


def _consume(bootstrap: str, wanted: set[str], timeout: float = 30) -> Counter[str]:
    """Read the topic from the start until every wanted `event_id` came (or the time is up)."""
    consumer = KafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        consumer_timeout_ms=1000,
    )
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not wanted <= set(seen):
            for message in consumer:
                seen[json.loads(message.value)["event_id"]] += 1
    finally:
        consumer.close()
    return seen


def _drain(stack: Stack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _backlog(stack) and time.monotonic() < deadline:
        stack.manage("publish_events")
        time.sleep(0.2)
    assert _backlog(stack) == 0, "the outbox was not drained after the broker came back"


def test_kafka_outage_loses_no_event(stack_folder):
    with running_stack(stack_folder, kafka=True) as stack:
        assert stack.broker is not None
        service = stack.gunicorn(workers=2)
        stack.celery_worker(name="relay")

        before = [service.register_and_login(f"early{i}")["access"] for i in range(5)]
        _drain(stack)
        early = _event_ids(stack)
        seen = _consume(stack.broker.bootstrap, early)
        assert early <= set(seen)

        stack.broker.stop()
        slowest = 0.0
        for i in range(5):
            started = time.monotonic()
            service.register_and_login(f"late{i}")
            reply = service.request(
                "PATCH", "/api/v1/users/me", {"full_name": f"Renamed {i}"}, token=before[i]
            )
            assert reply.status == 200, reply.body
            slowest = max(slowest, time.monotonic() - started)
        # The relay runs after commit in the worker, never in the request: the broker's absence costs nothing.
        assert slowest < 5, slowest
        assert _backlog(stack) >= 10

        stack.broker.start()
        _drain(stack)
        everything = _event_ids(stack)
        late = everything - early
        assert len(late) >= 10
        seen.update(_consume(stack.broker.bootstrap, late))

        # None lost, none invented. At-least-once allows a duplicate on the wire; the consumer's view is
        # the set of `event_id`s, where each of them counts once.
        assert set(seen) == everything, (everything - set(seen), set(seen) - everything)
