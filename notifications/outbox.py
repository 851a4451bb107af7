"""The outbox relay: publishes stored events to Kafka, at least once, in order of creation.

Rows are claimed with `SELECT ... FOR UPDATE SKIP LOCKED` (PostgreSQL), so
several relays (the after-commit task, beat's sweep, `publish_events`) can run
at once and each row goes out once in the normal case. SQLite has no row
locks: the embedded default is one process, where that is moot.

Every message is a CloudEvent in the Kafka binding's binary mode (`kafka_message`):
the value is the JSON it always was, and the event's attributes ride in `ce_*`
headers, so a CloudEvents SDK reads it and a consumer that reads only the key and
value sees no change.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from cloudevents.core.bindings.kafka import KafkaMessage, to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core import metrics

from .models import OutboxEvent, ProcessedEvent

logger = logging.getLogger(__name__)
events_log = logging.getLogger("events")

_producer: Any = None
_producer_lock = threading.Lock()


def _get_producer() -> Any:
    """One producer per process, made on first use (a broker that is down fails here, not at import)."""
    global _producer
    with _producer_lock:
        if _producer is None:
            from kafka import KafkaProducer

            _producer = KafkaProducer(
                bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
                acks="all",
                retries=5,
                linger_ms=5,
                batch_size=256 * 1024,
                max_block_ms=settings.KAFKA_MAX_BLOCK_MS,
                # kafka-python connects inside the constructor and would wait 30 s for a dead broker.
                bootstrap_timeout_ms=settings.KAFKA_MAX_BLOCK_MS,
                request_timeout_ms=settings.KAFKA_REQUEST_TIMEOUT_MS,
            )
        return _producer


def _drop_producer() -> None:
    global _producer
    with _producer_lock:
        if _producer is not None:
            try:
                _producer.close(timeout=1)
            except Exception:
                logger.debug("closing a failed producer", exc_info=True)
            _producer = None


def _encode(payload: Any) -> bytes:
    # UTF-8 as is, not \uXXXX escapes: a Cyrillic text costs 2 bytes a character instead of 6,
    # so a new_request with two texts of DOCUMENT_MAX_TEXT_CHARS fits Kafka's 1 MB message.
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


_JSON_FORMAT = JSONFormat()
CONTENT_TYPE = "application/json"


def _occurred_at(row: OutboxEvent) -> datetime:
    """The payload's `occurred_at` (`ce_time` is that moment), or the row's own time."""
    when = row.payload.get("occurred_at") if isinstance(row.payload, dict) else None
    try:
        moment = datetime.fromisoformat(str(when))
    except ValueError:
        return row.created_at
    return moment if moment.tzinfo is not None else row.created_at


def kafka_message(row: OutboxEvent) -> KafkaMessage:
    """The Kafka message of an outbox row: the CloudEvents 1.0 Kafka binding, binary mode.

    Made by the `cloudevents` SDK (its 2.x `core.bindings.kafka`; 1.x had `cloudevents.kafka`),
    whose headers are a dict of bytes, which kafka-python's `send(headers=...)` takes as a list
    of pairs. The data goes in already encoded (`_encode`): the SDK would write it with
    `json.dumps`' ASCII escapes, three times longer for Cyrillic text and over Kafka's 1 MB for
    a `new_request` of two long documents. So the value is byte for byte what it was before the
    headers existed, and the key stays the event name.
    """
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(row.id),  # the payload's event_id: event_fields makes them one
        "source": settings.EVENTS_SOURCE,
        "type": row.key,
        "time": _occurred_at(row),
        "datacontenttype": CONTENT_TYPE,
    }
    subject = row.payload.get("user_id") if isinstance(row.payload, dict) else None
    if isinstance(subject, str) and subject:
        attributes["subject"] = subject
    event = CloudEvent(attributes, _encode(row.payload))
    return to_binary(event, _JSON_FORMAT, key_mapper=lambda _: row.key.encode())


def send_batch(rows: list[OutboxEvent]) -> tuple[list[Any], list[Any], str]:
    """(published ids, failed ids, first error) for one batch.

    The relay's transport, and its public seam: a test or a tool that needs a
    broker to refuse part of a batch substitutes this function.
    """
    if not settings.KAFKA_BOOTSTRAP_SERVERS:
        for row in rows:
            events_log.info("event %s %s %s", row.topic, row.key, json.dumps(row.payload))
        return [row.id for row in rows], [], ""
    try:
        producer = _get_producer()
        futures = []
        for row in rows:
            message = kafka_message(row)
            headers = list(message.headers.items())
            futures.append(
                (row.id, producer.send(row.topic, key=message.key, value=message.value, headers=headers))
            )
        producer.flush(timeout=settings.KAFKA_REQUEST_TIMEOUT_MS / 1000)
    except Exception as exc:  # broker unreachable: nothing of this batch is known to be out
        _drop_producer()
        return [], [row.id for row in rows], f"{type(exc).__name__}: {exc}"
    published, failed, error = [], [], ""
    for row_id, future in futures:
        try:
            future.get(timeout=1)
            published.append(row_id)
        except Exception as exc:
            failed.append(row_id)
            error = error or f"{type(exc).__name__}: {exc}"
    if failed:
        _drop_producer()
    return published, failed, error


def outbox_publish(*, batch_size: int = 1000, max_batches: int | None = None) -> int:
    """Publish pending events until none are left (or `max_batches`); returns how many went out.

    Stops at the first batch the broker refuses: the rows wait, with their
    attempt count and error, for the next run.
    """
    total = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        batches += 1
        with transaction.atomic():
            rows = list(
                OutboxEvent.objects.select_for_update(skip_locked=True)
                .filter(published_at__isnull=True)
                .order_by("created_at")[:batch_size]
            )
            if not rows:
                break
            published, failed, error = send_batch(rows)
            if published:
                OutboxEvent.objects.filter(id__in=published).update(
                    published_at=timezone.now(), attempts=F("attempts") + 1
                )
            if failed:
                OutboxEvent.objects.filter(id__in=failed).update(
                    attempts=F("attempts") + 1, last_error=error[:2000]
                )
        total += len(published)
        metrics.EVENTS_PUBLISHED.inc(len(published))
        metrics.EVENTS_FAILED.inc(len(failed))
        if failed:
            logger.warning("outbox: %d event(s) not published: %s", len(failed), error)
            break
        if len(rows) < batch_size:
            break
    return total


def outbox_purge() -> int:
    """Delete published events, and the ids of consumed ones, older than `OUTBOX_RETENTION_DAYS`.

    A duplicate delivered later than that would be handled again: Kafka's own
    retention is far shorter than a week in practice.
    """
    cutoff = timezone.now() - timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    deleted, _ = OutboxEvent.objects.filter(published_at__lt=cutoff).delete()
    ProcessedEvent.objects.filter(processed_at__lt=cutoff).delete()
    return deleted
