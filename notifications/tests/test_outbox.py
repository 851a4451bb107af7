"""The outbox relay without a broker of its own: the embedded default (events to the log), a
refused batch (rows wait with their error), retention, `manage.py publish_events`, and two relays
at once on PostgreSQL (each row published once)."""

from __future__ import annotations

import io
import logging
import os
import signal
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

from notifications import outbox, services, tasks
from notifications.models import OutboxEvent
from testing.kafka import unique_name

pytestmark = pytest.mark.django_db


@pytest.fixture
def embedded(settings, no_producer):
    settings.KAFKA_BOOTSTRAP_SERVERS = []
    return settings


def emit(count: int, name: str = "thing_happened") -> list[OutboxEvent]:
    return [services.event_emit(name=name, payload={"n": index}) for index in range(count)]


def test_without_kafka_the_relay_logs_each_event_and_marks_it_published(embedded, caplog):
    rows = emit(3)
    caplog.set_level(logging.INFO, logger="events")

    assert outbox.outbox_publish() == 3

    logged = [r.getMessage() for r in caplog.records if r.name == "events"]
    assert len(logged) == 3
    for row, line in zip(rows, logged, strict=True):  # in order of creation
        assert row.key in line
        assert row.topic in line
        assert f'"event_id": "{row.id}"' in line
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()
    assert set(OutboxEvent.objects.values_list("attempts", flat=True)) == {1}

    caplog.clear()
    assert outbox.outbox_publish() == 0  # nothing twice
    assert not [r for r in caplog.records if r.name == "events"]


def test_the_relay_works_in_batches(embedded):
    emit(7)

    assert outbox.outbox_publish(batch_size=3, max_batches=1) == 3  # one batch: three rows
    assert outbox.outbox_publish(batch_size=3, max_batches=1) == 3
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 1
    assert outbox.outbox_publish(batch_size=3) == 1  # the short last batch ends the run

    emit(4)
    assert outbox.outbox_publish(batch_size=3, max_batches=1) == 3
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 1


@pytest.fixture
def dead_broker(settings, no_producer):
    """Kafka configured at an address where nothing listens: the producer cannot be made."""
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]
    settings.KAFKA_MAX_BLOCK_MS = 200
    settings.KAFKA_REQUEST_TIMEOUT_MS = 500
    return settings


def test_a_refused_batch_waits_with_its_attempts_and_error(dead_broker):
    rows = emit(2)

    assert outbox.outbox_publish() == 0  # the broker is down: nothing of the batch is known to be out
    assert outbox.outbox_publish() == 0

    for row in rows:
        row.refresh_from_db()
        assert row.published_at is None
        assert row.attempts == 2
        assert row.last_error.startswith(("KafkaTimeoutError", "NoBrokersAvailable"))


def test_a_partly_refused_batch_publishes_the_rest(settings, monkeypatch):
    ok, refused = emit(2)
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]
    # Part of a batch refused by a live broker (one partition without a leader): through the
    # relay's public transport seam, since a one-broker test cluster cannot lose a leader.
    monkeypatch.setattr(outbox, "send_batch", lambda rows: ([ok.id], [refused.id], "NotLeaderForPartition"))

    assert outbox.outbox_publish() == 1

    ok.refresh_from_db()
    refused.refresh_from_db()
    assert ok.published_at is not None
    assert (refused.published_at, refused.attempts, refused.last_error) == (None, 1, "NotLeaderForPartition")


@pytest.mark.slow
def test_a_broker_that_comes_back_gets_the_waiting_rows(dead_broker, kafka_broker):
    dead_broker.KAFKA_TOPIC_DATA = unique_name()
    rows = emit(2)
    assert outbox.outbox_publish() == 0

    dead_broker.KAFKA_BOOTSTRAP_SERVERS = [kafka_broker.bootstrap]
    dead_broker.KAFKA_MAX_BLOCK_MS = 5000
    dead_broker.KAFKA_REQUEST_TIMEOUT_MS = 5000

    assert outbox.outbox_publish() == 2
    for row in rows:
        row.refresh_from_db()
        assert row.published_at is not None
        assert row.attempts == 2


def test_the_producer_is_configured_for_durability_and_a_bounded_wait(settings, monkeypatch, no_producer):
    """acks=all, retries, the event name as key and JSON as value; and a broker that is down makes
    the relay give up within KAFKA_MAX_BLOCK_MS / KAFKA_REQUEST_TIMEOUT_MS, not kafka-python's
    default 30 s bootstrap wait (which `max_block_ms` does not cover)."""
    import kafka

    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]
    settings.KAFKA_MAX_BLOCK_MS = 500
    settings.KAFKA_REQUEST_TIMEOUT_MS = 1000
    made = {}

    class Recorder:
        def __init__(self, **config):
            made.update(config)

    monkeypatch.setattr(kafka, "KafkaProducer", Recorder)
    outbox._get_producer()

    assert made["acks"] == "all"
    assert made["retries"] >= 1
    assert made["bootstrap_servers"] == ["127.0.0.1:1"]
    assert outbox._encode({"a": 1}) == b'{"a":1}'  # the relay sends bytes: key = event name, value = JSON
    assert made["max_block_ms"] == 500
    bound = max(settings.KAFKA_MAX_BLOCK_MS, settings.KAFKA_REQUEST_TIMEOUT_MS)
    assert "api_version" in made or made.get("bootstrap_timeout_ms", 30000) <= bound, (
        "KafkaProducer(...) gets no bootstrap_timeout_ms (nor api_version): with the broker down, "
        "kafka-python 3 waits 30 s in the constructor, whatever KAFKA_MAX_BLOCK_MS says"
    )


# --- retention ---------------------------------------------------------------------------


def test_purge_deletes_published_events_past_the_retention_only(settings):
    settings.OUTBOX_RETENTION_DAYS = 7
    now = timezone.now()
    old_published, recent_published, old_pending, recent_pending = emit(4)
    OutboxEvent.objects.filter(id=old_published.id).update(
        created_at=now - timedelta(days=9), published_at=now - timedelta(days=8)
    )
    OutboxEvent.objects.filter(id=recent_published.id).update(published_at=now - timedelta(days=6))
    OutboxEvent.objects.filter(id=old_pending.id).update(created_at=now - timedelta(days=30))

    assert outbox.outbox_purge() == 1
    assert tasks.purge_outbox() == 0

    assert set(OutboxEvent.objects.values_list("id", flat=True)) == {
        recent_published.id,
        old_pending.id,
        recent_pending.id,
    }

    settings.OUTBOX_RETENTION_DAYS = 5
    assert outbox.outbox_purge() == 1
    assert not OutboxEvent.objects.filter(id=recent_published.id).exists()


def test_the_periodic_sweeps_are_scheduled(settings):
    tasks_scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"notifications.tasks.publish_outbox", "notifications.tasks.purge_outbox"} <= tasks_scheduled


# --- publish_events ------------------------------------------------------------------------


def test_publish_events_drains_once_and_says_how_many(embedded):
    emit(5)
    out = io.StringIO()

    call_command("publish_events", stdout=out)

    assert out.getvalue().strip() == "published 5 event(s)"
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()

    out = io.StringIO()
    call_command("publish_events", "--batch-size", "2", stdout=out)
    assert out.getvalue().strip() == "published 0 event(s)"


def test_publish_events_loop_keeps_going_and_stops_on_sigterm(embedded, monkeypatch):
    emit(2)
    rounds = []
    original = outbox.outbox_publish

    def publish(**kwargs):
        rounds.append(1)
        if len(rounds) == 2:
            emit(1, name="between_rounds")
        published = original(**kwargs)
        if len(rounds) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # as an orchestrator stopping the container would
        return published

    monkeypatch.setattr("notifications.management.commands.publish_events.outbox_publish", publish)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    watchdog = threading.Timer(20, os.kill, (os.getpid(), signal.SIGINT))  # never hang the suite
    watchdog.start()
    out = io.StringIO()
    try:
        call_command("publish_events", "--loop", "--interval", "0.05", stdout=out)
    finally:
        watchdog.cancel()
        for sig, handler in saved.items():
            signal.signal(sig, handler)

    assert len(rounds) == 3
    assert out.getvalue().strip() == "published 3 event(s)"
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()


# --- two relays at once ------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks (SELECT ... FOR UPDATE SKIP LOCKED) need PostgreSQL"
)
@pytest.mark.django_db(transaction=True)
def test_two_relays_at_once_publish_each_row_once(settings, monkeypatch):
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]  # never reached: send_batch is the fake producer
    ids = {row.id for row in emit(300)}
    sent: dict[str, list] = {"a": [], "b": []}
    start = threading.Barrier(2)
    errors = []

    def fake_send(rows):
        sent[threading.current_thread().name].extend(row.id for row in rows)
        threading.Event().wait(0.01)  # a network round trip: the other relay runs meanwhile
        return [row.id for row in rows], [], ""

    # The relay's public transport seam: it records which relay sent which row.
    monkeypatch.setattr(outbox, "send_batch", fake_send)
    totals = {}

    def relay():
        try:
            start.wait()
            totals[threading.current_thread().name] = outbox.outbox_publish(batch_size=50)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=relay, name=name) for name in sent]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    everything = sent["a"] + sent["b"]
    assert len(everything) == len(set(everything)) == 300  # each row sent once, by one relay
    assert set(everything) == ids
    assert sent["a"]
    assert sent["b"]  # both relays really worked at once
    assert totals["a"] + totals["b"] == 300
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()
    assert set(OutboxEvent.objects.values_list("attempts", flat=True)) == {1}


def test_purge_also_forgets_consumed_event_ids_past_retention(settings):
    from datetime import timedelta

    from django.utils import timezone

    from notifications.models import ProcessedEvent
    from notifications.outbox import outbox_purge

    settings.OUTBOX_RETENTION_DAYS = 7
    ProcessedEvent.objects.create(event_id="old", key="k", processed_at=timezone.now() - timedelta(days=8))
    ProcessedEvent.objects.create(event_id="recent", key="k", processed_at=timezone.now() - timedelta(days=6))
    outbox_purge()
    assert list(ProcessedEvent.objects.values_list("event_id", flat=True)) == ["recent"]
