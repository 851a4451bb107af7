"""The event consumer: reads `KAFKA_TOPIC_AI_RESULTS`, dispatches by message key.

Handlers register with `@handles("event_name")` and take the decoded payload.
They live with the app that owns the event, in its `handlers` module (say
`profiles/handlers.py` for `processing_result`), which `run` imports: this,
the lowest app, never imports the apps above it.
Each message is handled in a transaction together with its `ProcessedEvent`
row, so a second delivery of the same `event_id` is dropped; offsets are
committed after handling. Malformed and unknown messages are logged and
skipped: one bad message never stops the stream.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.module_loading import autodiscover_modules

from config.metrics import consumer_message_counted

from .models import ProcessedEvent

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {}
# A handler that raises (a database hiccup, say) is tried again before its message is skipped.
HANDLER_ATTEMPTS = 3
HANDLER_RETRY_SECONDS = 0.2


def handles(name: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        HANDLERS[name] = func
        return func

    return register


def load_handlers() -> None:
    """Import every installed app's `handlers` module, where it registers what it consumes."""
    autodiscover_modules("handlers")


def handle_message(*, key: bytes | str | None, value: bytes | None, fallback_id: str) -> str:
    """Handle one message; returns the outcome: handled, duplicate, malformed, unknown or failed.

    `fallback_id` (topic/partition/offset) identifies a message that carries no `event_id`.
    """
    name = key.decode(errors="replace") if isinstance(key, bytes) else (key or "")
    try:
        payload = json.loads(value or b"")
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as exc:
        logger.warning("event %s at %s skipped: malformed (%s)", name or "?", fallback_id, exc)
        return "malformed"
    handler = HANDLERS.get(name)
    if handler is None:
        logger.warning("event %r at %s skipped: no handler", name, fallback_id)
        return "unknown"
    event_id = str(payload.get("event_id") or fallback_id)[:255]
    for attempt in range(1, HANDLER_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                try:
                    with transaction.atomic():
                        ProcessedEvent.objects.create(event_id=event_id, key=name)
                except IntegrityError:
                    logger.info("event %s %s dropped: already processed", name, event_id)
                    return "duplicate"
                handler(payload)
            return "handled"
        except Exception:
            if attempt == HANDLER_ATTEMPTS:
                # Skipped rather than retried forever: one poisoned message must not stop the stream.
                logger.exception("event %s %s failed %d times; skipped", name, event_id, attempt)
            else:
                logger.warning("event %s %s failed (attempt %d); retrying", name, event_id, attempt)
                time.sleep(HANDLER_RETRY_SECONDS * attempt)
    return "failed"


def run(
    consumer: Any,
    *,
    max_messages: int | None = None,
    timeout: float | None = None,
    stop: threading.Event | None = None,
) -> Counter[str]:
    """Poll and handle until stopped, `max_messages` handled, or `timeout` seconds passed."""
    from kafka.structs import OffsetAndMetadata  # kafka-python only where a consumer runs

    load_handlers()
    outcomes: Counter[str] = Counter()
    stop = stop or threading.Event()
    deadline = time.monotonic() + timeout if timeout else None
    seen = 0
    while not stop.is_set():
        if deadline is not None and time.monotonic() >= deadline:
            break
        batches = consumer.poll(timeout_ms=500)
        offsets = {}
        for partition, records in batches.items():
            for record in records:
                fallback = f"{record.topic}/{record.partition}/{record.offset}"
                outcome = handle_message(key=record.key, value=record.value, fallback_id=fallback)
                outcomes[consumer_message_counted(record.key, outcome)] += 1
                offsets[partition] = OffsetAndMetadata(record.offset + 1, "", -1)
                seen += 1
                if max_messages is not None and seen >= max_messages:
                    break
            if max_messages is not None and seen >= max_messages:
                break
        if offsets:
            consumer.commit(offsets=offsets)
        if max_messages is not None and seen >= max_messages:
            break
    return outcomes
