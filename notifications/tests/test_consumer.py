"""The event consumer: dispatch by message key to registered handlers, duplicates dropped by
`event_id`, malformed and unknown messages logged and dead-lettered, offsets committed after
handling, clean stop (SIGTERM, --max-messages, --timeout). The handler is the tests' own.

What one hostile message can and cannot do is in `test_consumer_dead_letters.py`."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from kafka.structs import OffsetAndMetadata, TopicPartition

from accounts.models import User
from accounts.tests.factories import UserFactory
from notifications import consumer
from notifications.models import ProcessedEvent
from testing.kafka import produce, read_topic, unique_name

pytestmark = pytest.mark.django_db


@pytest.fixture
def handled(monkeypatch):
    """A handler for `test_event`: records each payload it is given."""
    seen: list[dict] = []

    def handler(payload):
        seen.append(payload)

    monkeypatch.setitem(consumer.HANDLERS, "test_event", handler)
    return seen


@pytest.fixture
def letters() -> list:
    """A dead-letter sender that keeps what it is given."""
    return []


def value(**fields) -> bytes:
    return json.dumps(fields).encode()


# --- one message ---------------------------------------------------------------------------


def test_a_message_is_handled_once_and_recorded(handled):
    event_id = str(uuid.uuid4())

    outcome = consumer.handle_message(
        key=b"test_event", value=value(event_id=event_id, n=1), fallback_id="t/0/0"
    )

    assert outcome == "handled"
    assert handled == [{"event_id": event_id, "n": 1}]
    assert ProcessedEvent.objects.get(event_id=event_id).key == "test_event"


def test_a_second_delivery_of_an_event_is_dropped(handled, caplog):
    event_id = str(uuid.uuid4())
    consumer.handle_message(key=b"test_event", value=value(event_id=event_id), fallback_id="t/0/0")
    caplog.set_level(logging.INFO, logger="notifications.consumer")

    outcome = consumer.handle_message(key="test_event", value=value(event_id=event_id), fallback_id="t/0/7")

    assert outcome == "duplicate"
    assert len(handled) == 1
    assert ProcessedEvent.objects.count() == 1
    assert event_id in caplog.text


@pytest.mark.parametrize(
    "raw", [b"{not json", b"[1, 2]", b'"a string"', b"", None, b"\xff\xfe\x00", b"null"], ids=repr
)
def test_a_malformed_message_is_logged_and_dead_lettered(handled, caplog, raw):
    outcome = consumer.handle_message(key=b"test_event", value=raw, fallback_id="t/0/3")

    assert outcome == "malformed"
    assert handled == []
    assert not ProcessedEvent.objects.exists()
    assert "t/0/3" in caplog.text


@pytest.mark.parametrize("key", [b"nobody_handles_this", None, b""])
def test_an_unknown_message_is_logged_and_dead_lettered(handled, caplog, key):
    outcome = consumer.handle_message(key=key, value=value(event_id="x"), fallback_id="t/1/9")

    assert outcome == "unknown"
    assert handled == []
    assert not ProcessedEvent.objects.exists()
    assert "t/1/9" in caplog.text


def test_a_message_without_event_id_is_deduplicated_by_its_position(handled):
    assert consumer.handle_message(key=b"test_event", value=value(n=1), fallback_id="t/0/5") == "handled"
    assert consumer.handle_message(key=b"test_event", value=value(n=1), fallback_id="t/0/5") == "duplicate"
    assert consumer.handle_message(key=b"test_event", value=value(n=1), fallback_id="t/0/6") == "handled"
    assert len(handled) == 2
    assert set(ProcessedEvent.objects.values_list("event_id", flat=True)) == {"t/0/5", "t/0/6"}


def test_a_failing_handler_is_logged_and_leaves_the_event_unprocessed(monkeypatch, caplog):
    def writes_then_fails(payload):
        UserFactory(username="made_by_handler")
        raise RuntimeError("handler failed")

    monkeypatch.setitem(consumer.HANDLERS, "test_event", writes_then_fails)
    event_id = str(uuid.uuid4())

    outcome = consumer.handle_message(key=b"test_event", value=value(event_id=event_id), fallback_id="t/0/1")

    assert outcome == "failed"
    assert "handler failed" in caplog.text
    assert not ProcessedEvent.objects.filter(event_id=event_id).exists()  # one transaction with the work
    assert not User.objects.filter(username="made_by_handler").exists()


# --- the polling loop, with a consumer of the tests' own ---------------------------------------


class FakeConsumer:
    """Hands out prepared batches, then nothing; records the commits."""

    def __init__(self, batches: list[list[SimpleNamespace]], on_empty=None) -> None:
        self.batches = list(batches)
        self.commits: list[dict] = []
        self.polls = 0
        self.on_empty = on_empty

    def poll(self, timeout_ms: int = 0):
        self.polls += 1
        if self.batches:
            records = self.batches.pop(0)
            grouped: dict = {}
            for record in records:
                grouped.setdefault(TopicPartition(record.topic, record.partition), []).append(record)
            return grouped
        if self.on_empty:
            self.on_empty(self)
        time.sleep(0.01)
        return {}

    def commit(self, offsets=None):
        self.commits.append(offsets)


def record(
    offset: int,
    *,
    key: bytes | None = b"test_event",
    raw: bytes | None = None,
    partition: int = 0,
    headers: list | None = None,
):
    return SimpleNamespace(
        topic="results",
        partition=partition,
        offset=offset,
        key=key,
        value=raw if raw is not None else value(event_id=f"e{offset}"),
        headers=headers or [],
    )


def test_run_handles_every_record_and_commits_after_each_poll(handled, letters):
    fake = FakeConsumer(
        [
            [record(0), record(1), record(0, partition=1, raw=b"{bad")],
            [record(2, key=b"other"), record(3, raw=value(event_id="e0"))],
        ]
    )

    outcomes = consumer.run(fake, dead_letter=letters.append, max_messages=5, timeout=10)

    assert outcomes == {"handled": 2, "malformed": 1, "unknown": 1, "duplicate": 1}
    assert [p["event_id"] for p in handled] == ["e0", "e1"]
    assert [(letter.key, letter.value) for letter in letters] == [
        (b"test_event", b"{bad"),
        (b"other", value(event_id="e2")),
    ]
    tp0, tp1 = TopicPartition("results", 0), TopicPartition("results", 1)
    assert fake.commits == [
        {tp0: OffsetAndMetadata(2, "", -1), tp1: OffsetAndMetadata(1, "", -1)},
        {tp0: OffsetAndMetadata(4, "", -1)},
    ]


def test_run_stops_at_max_messages_and_commits_only_what_it_handled(handled, letters):
    fake = FakeConsumer([[record(0), record(1), record(2)]])

    outcomes = consumer.run(fake, dead_letter=letters.append, max_messages=2)

    assert outcomes == {"handled": 2}
    assert fake.commits == [{TopicPartition("results", 0): OffsetAndMetadata(2, "", -1)}]


def test_run_stops_when_told_to(handled, letters):
    stop = threading.Event()
    fake = FakeConsumer([[record(0)]], on_empty=lambda c: c.polls >= 5 and stop.set())

    started = time.monotonic()
    outcomes = consumer.run(fake, dead_letter=letters.append, stop=stop)

    assert time.monotonic() - started < 5
    assert outcomes == {"handled": 1}
    assert fake.polls == 5


def test_run_stops_after_its_timeout(letters):
    fake = FakeConsumer([])
    started = time.monotonic()

    assert consumer.run(fake, dead_letter=letters.append, timeout=0.3) == {}
    assert 0.3 <= time.monotonic() - started < 3


def test_consume_events_stops_cleanly_on_sigterm(settings, monkeypatch, handled):
    """The command wires SIGTERM to the loop's stop: the batch in hand finishes, the consumer closes."""
    import kafka

    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]
    made = []

    def sigterm_once_idle(fake):
        if fake.polls == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    class CommandConsumer(FakeConsumer):
        def __init__(self, *topics, **config):
            super().__init__([[record(0)]], on_empty=sigterm_once_idle)
            self.topics, self.config, self.closed = topics, config, False
            made.append(self)

        def close(self):
            self.closed = True

    monkeypatch.setattr(kafka, "KafkaConsumer", CommandConsumer)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    out = io.StringIO()
    try:
        call_command("consume_events", "--timeout", "20", stdout=out)  # the timeout only guards the suite
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)

    [fake] = made
    assert fake.closed
    assert fake.polls == 3
    assert fake.topics == (settings.KAFKA_TOPIC_AI_RESULTS,)
    assert fake.config["group_id"] == settings.KAFKA_CONSUMER_GROUP
    assert fake.config["enable_auto_commit"] is False
    assert out.getvalue().strip() == "handled 1"


def test_consume_events_needs_a_broker(settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = []
    with pytest.raises(CommandError, match="KAFKA_BOOTSTRAP_SERVERS"):
        call_command("consume_events", "--max-messages", "1")


# --- against the broker ---------------------------------------------------------------------


@pytest.mark.slow
def test_consume_events_against_kafka_dedupes_dead_letters_bad_input_and_commits_offsets(
    settings, kafka_broker, handled
):
    topic = unique_name()
    settings.KAFKA_BOOTSTRAP_SERVERS = [kafka_broker.bootstrap]
    settings.KAFKA_CONSUMER_GROUP = unique_name("group")
    settings.KAFKA_TOPIC_AI_RESULTS_DLQ = unique_name("dlq")
    first = str(uuid.uuid4())

    def produce_to_topic(*messages):
        produce(kafka_broker.bootstrap, topic, messages, partition=0)

    produce_to_topic(
        (b"test_event", value(event_id=first, n=1)),
        (b"test_event", value(event_id=first, n=1)),  # the same event delivered again
        (b"test_event", b"{not json"),
        (b"nobody_handles_this", value(event_id=str(uuid.uuid4()))),
        (b"test_event", value(n=2)),  # no event_id: identified by its position
    )
    out = io.StringIO()
    started = time.monotonic()
    call_command("consume_events", "--topic", topic, "--max-messages", "5", "--timeout", "20", stdout=out)

    assert time.monotonic() - started < 20  # stopped at 5 messages, not at the timeout
    assert out.getvalue().strip() == "duplicate 1, handled 2, malformed 1, unknown 1"
    assert handled == [{"event_id": first, "n": 1}, {"n": 2}]
    assert set(ProcessedEvent.objects.values_list("event_id", flat=True)) == {first, f"{topic}/0/4"}
    copies = read_topic(kafka_broker.bootstrap, settings.KAFKA_TOPIC_AI_RESULTS_DLQ, expect=2)
    # Sorted: each copy keeps its key, so the two may land on different partitions of the DLQ,
    # and a read across partitions has no order.
    assert sorted((c.key, dict(c.headers)["dlq_reason"]) for c in copies) == [
        (b"nobody_handles_this", b"unknown"),
        (b"test_event", b"malformed"),
    ]

    # The group goes on where it stopped: the next member reads the new message first, and
    # only it (had the offsets not been committed, it would meet the old ones again).
    later = str(uuid.uuid4())
    produce_to_topic((b"test_event", value(event_id=later, n=3)))
    out = io.StringIO()
    call_command("consume_events", "--topic", topic, "--max-messages", "1", "--timeout", "20", stdout=out)

    assert out.getvalue().strip() == "handled 1"
    assert handled[2:] == [{"event_id": later, "n": 3}]


def test_a_handler_that_fails_once_on_the_database_is_retried_and_handled(monkeypatch):
    calls = []

    def flaky(payload):
        calls.append(payload["event_id"])
        if len(calls) == 1:
            raise OperationalError("database hiccup")

    monkeypatch.setitem(consumer.HANDLERS, "flaky_event", flaky)
    monkeypatch.setattr(consumer, "RETRY_FIRST_DELAY", 0)
    outcome = consumer.handle_message(
        key=b"flaky_event", value=b'{"event_id": "e-flaky-1"}', fallback_id="t/0/1"
    )
    assert outcome == "handled"
    assert calls == ["e-flaky-1", "e-flaky-1"]
    assert ProcessedEvent.objects.filter(event_id="e-flaky-1").count() == 1


# --- handlers live with the app that owns the event ----------------------------------------


def test_the_app_that_owns_an_event_registers_its_handler_once_in_ready():
    """`notifications` imports no app above it: profiles registers `processing_result` from its
    `AppConfig.ready()` (Django's setup), before and without any consumer running."""
    assert consumer.HANDLERS["processing_result"].__module__ == "profiles.handlers"
    source = Path(consumer.__file__).read_text()
    assert "autodiscover_modules" not in source
    assert "import_module" not in source
