"""The event consumer: reads `KAFKA_TOPIC_AI_RESULTS`, dispatches by event type.

Handlers register with `@handles("event_name")` and take the decoded payload.
They live with the app that owns the event, in its `handlers` module (say
`profiles/handlers.py` for `processing_result`), which that app's
`AppConfig.ready()` imports, once: this, the lowest app, never imports the
apps above it.

One message never decides the stream's fate. Each is handled in its own `try`:
its size is checked before it is read, its JSON parsed with a depth bound, its
payload checked by the handler's validator, and the handler run in a
transaction together with its `ProcessedEvent` row (so a second delivery of
the same `event_id` is dropped). Only a transient database fault is retried,
within `RETRY_BUDGET_SECONDS`. A message that cannot be handled ends with one
of `DEAD_LETTER_REASONS`: logged on one line, counted, copied to the
dead-letter topic with the reason in its `dlq_reason` header (and, when the
original was a CloudEvent, in `ce_dlqreason` too), and committed.
If the copy cannot be made, the offset is not committed and `run` stops
(`DeadLetterUnavailable`): the broker is away, and nothing is lost.
"""

from __future__ import annotations

import json
import logging
import reprlib
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connections, transaction

from core.metrics import DEAD_LETTER_REASONS, consumer_dead_lettered, consumer_message_counted

from .models import ProcessedEvent

logger = logging.getLogger(__name__)

Payload = dict[str, Any]
Handler = Callable[[Payload], None]
Validator = Callable[[Payload], Payload]
Headers = Sequence[tuple[str, bytes | None]]
HANDLERS: dict[str, Handler] = {}
#: Per event, a check of the payload's schema run before the handler's transaction: it returns the
#: payload the handler gets, or raises `InvalidMessage`.
VALIDATORS: dict[str, Validator] = {}

#: What the message may carry around the largest result: its other fields and the JSON syntax.
ENVELOPE_BYTES = 16 * 1024
#: Nesting past this is no real result; it bounds what every later step (the database's JSON,
#: `json.dumps` of the event we emit) may have to recurse through.
MAX_DEPTH = 64
#: Only the database being away is worth waiting for; anything else would fail again the same way.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
#: The longest one message may hold its partition retrying, sleeps included: every later result
#: waits behind it.
RETRY_BUDGET_SECONDS = 5.0
RETRY_FIRST_DELAY = 0.1
RETRY_MAX_DELAY = 1.0
#: A dead-letter copy stays under Kafka's default 1 MiB message: a bigger original (which its own
#: topic may allow) is cut, and says so, rather than stop the stream on a copy the broker refuses.
DEAD_LETTER_MAX_BYTES = 900 * 1024
DEAD_LETTER_MAX_KEY_BYTES = 1024
DEAD_LETTER_MAX_HEADER_BYTES = 64 * 1024
DETAIL_CHARS = 300
#: The CloudEvents extension attribute of the dead-letter reason, and the prefix of ours.
DEAD_LETTER_CE_REASON = "ce_dlqreason"
DEAD_LETTER_CE_PREFIX = "ce_dlq"

#: What a message that is handled, or dropped as already handled, counts as; every other outcome
#: is one of `DEAD_LETTER_REASONS` (named in `core.metrics`, whose labels they are).
HANDLED, DUPLICATE = "handled", "duplicate"
MALFORMED = "malformed"  # not UTF-8, not JSON, or not an object
TOO_LARGE = "too_large"  # over PROCESSING_RESULT_MAX_BYTES + ENVELOPE_BYTES: refused unread
TOO_DEEP = "too_deep"  # nested past the parser's recursion limit or MAX_DEPTH
INVALID = "invalid"  # against its event's schema
UNKNOWN = "unknown"  # no handler for its event type
FAILED = "failed"  # the handler raised, or the database stayed away past the retries
#: Outcomes reached after the event name was found among the handlers: only then is the name,
#: which comes from outside, trusted as a metric label.
_DISPATCHED = frozenset({HANDLED, DUPLICATE, INVALID, FAILED})

_shown = reprlib.Repr()
_shown.maxstring = _shown.maxother = 60


class InvalidMessage(Exception):
    """A payload that breaks its event's schema: dead-lettered as `invalid`, never retried.

    Raised by validators (and by handlers, for what only the database can tell). Its text goes
    to the log and the dead-letter header, so it should show outside values with `shown()`.
    """


class DeadLetterUnavailable(Exception):
    """The dead-letter copy could not be made: the message's offset was not committed."""


class Outcome(NamedTuple):
    outcome: str
    detail: str = ""


@dataclass(frozen=True)
class DeadLetter:
    """The copy of a message that could not be handled: its key, value and headers, plus ours."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


#: Sends one copy to the dead-letter topic and returns once the broker has it; raises otherwise.
DeadLetterSender = Callable[[DeadLetter], None]


def shown(value: Any) -> str:
    """An outside value for a log line or an error text: repr'd (no raw newlines), and short."""
    return _shown.repr(value)


def handles(name: str, *, validate: Validator | None = None) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        HANDLERS[name] = func
        if validate is not None:
            VALIDATORS[name] = validate
        else:
            VALIDATORS.pop(name, None)
        return func

    return register


def _header(headers: Headers | None, name: str) -> str | None:
    for key, raw in headers or ():
        if key == name and raw:
            return raw.decode(errors="replace")
    return None


def event_name(key: bytes | str | None, headers: Headers | None = None) -> str:
    """The event type: the CloudEvents `ce_type` header where there is one, else the message key.

    `ce_type` is the binding's own word for the type; the key may be anything the producer
    partitions by. Our own producer sets both to the event name.
    """
    ce_type = _header(headers, "ce_type")
    if ce_type:
        return ce_type
    return key.decode(errors="replace") if isinstance(key, bytes) else (key or "")


def _too_deep(value: Any) -> bool:
    """Whether `value` nests past `MAX_DEPTH` (iteratively: a recursive walk is what fails here)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _decode(value: bytes | None) -> Payload | Outcome:
    """The payload of a message, or why there is none; nothing of it is read past the size bound."""
    size = len(value or b"")
    limit = settings.PROCESSING_RESULT_MAX_BYTES + ENVELOPE_BYTES
    if size > limit:
        return Outcome(TOO_LARGE, f"{size} bytes, over {limit}")
    try:
        # UTF-8 and nothing else: json.loads would guess UTF-16 or UTF-32 from the bytes.
        payload = json.loads((value or b"").decode("utf-8"))
    except RecursionError:
        return Outcome(TOO_DEEP, "nested past the parser's depth")
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
        return Outcome(MALFORMED, f"{type(exc).__name__}: {exc}")
    if not isinstance(payload, dict):
        return Outcome(MALFORMED, f"not a JSON object but {type(payload).__name__}")
    if _too_deep(payload):
        return Outcome(TOO_DEEP, f"nested deeper than {MAX_DEPTH}")
    return payload


def _where(exc: BaseException) -> str:
    """The innermost frame that raised: a place to start from, with none of the message in it."""
    frames = traceback.extract_tb(exc.__traceback__, limit=-1)
    if not frames:
        return ""
    frame = frames[-1]
    return f" at {'/'.join(Path(frame.filename).parts[-2:])}:{frame.lineno}"


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:DETAIL_CHARS]}{_where(exc)}"


def _reconnect_if_broken() -> None:
    """Close the connections a database fault left broken, so that the next attempt reconnects.

    Django reconnects only a connection it has closed itself. One inside an atomic block (a
    test's) is left alone: closing it would break that block.
    """
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


def _apply(name: str, event_id: str, handler: Handler, payload: Payload) -> Outcome:
    """Run the handler with its `ProcessedEvent` row; transient faults retried within the budget."""
    deadline = time.monotonic() + RETRY_BUDGET_SECONDS
    delay = RETRY_FIRST_DELAY
    attempt = 0
    while True:
        attempt += 1
        try:
            with transaction.atomic():
                try:
                    with transaction.atomic():
                        ProcessedEvent.objects.create(event_id=event_id, key=name)
                except IntegrityError:
                    logger.info("event %s %r dropped: already processed", name, event_id)
                    return Outcome(DUPLICATE)
                handler(payload)
            return Outcome(HANDLED)
        except InvalidMessage as exc:
            return Outcome(INVALID, str(exc))
        except TRANSIENT_ERRORS as exc:
            if time.monotonic() + delay > deadline:
                return Outcome(FAILED, f"{_failure(exc)} (attempt {attempt}, retries spent)")
            logger.warning(
                "event %s %r: %s on attempt %d; retrying", name, event_id, type(exc).__name__, attempt
            )
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY)
            _reconnect_if_broken()
        except Exception as exc:  # a bug or a hostile payload: trying again would fail the same way
            return Outcome(FAILED, _failure(exc))


def _process(*, name: str, value: bytes | None, headers: Headers | None, fallback_id: str) -> Outcome:
    decoded = _decode(value)
    if isinstance(decoded, Outcome):
        return decoded
    handler = HANDLERS.get(name)
    if handler is None:
        return Outcome(UNKNOWN, "no handler for this event")
    validate = VALIDATORS.get(name)
    try:
        payload = validate(decoded) if validate is not None else decoded
    except InvalidMessage as exc:
        return Outcome(INVALID, str(exc))
    # Dropped as a duplicate by its id: the payload's `event_id`, the CloudEvents `ce_id`, or
    # where the message is when it carries neither.
    event_id = str(decoded.get("event_id") or _header(headers, "ce_id") or fallback_id)[:255]
    return _apply(name, event_id, handler, payload)


def process_message(
    *, key: bytes | str | None, value: bytes | None, fallback_id: str, headers: Headers | None = None
) -> tuple[str, Outcome]:
    """(event name, outcome) of one message; never raises an `Exception`, whatever the message.

    `fallback_id` (topic/partition/offset) identifies a message that carries no `event_id`.
    """
    name = "?"
    try:
        name = event_name(key, headers)
        outcome = _process(name=name, value=value, headers=headers, fallback_id=fallback_id)
    except Exception as exc:  # MemoryError, RecursionError, a bug: it ends this message only
        outcome = Outcome(FAILED, _failure(exc))
    if outcome.outcome in DEAD_LETTER_REASONS:
        # One line, the outside text repr'd: a newline in a value cannot forge a log line.
        logger.warning(
            "event %r at %s cannot be handled: %s (%r)",
            name[:100],
            fallback_id,
            outcome.outcome,
            outcome.detail[:DETAIL_CHARS],
        )
    return name, outcome


def handle_message(
    *, key: bytes | str | None, value: bytes | None, fallback_id: str, headers: Headers | None = None
) -> str:
    """Handle one message; returns the outcome: handled, duplicate, or a dead-letter reason."""
    return process_message(key=key, value=value, fallback_id=fallback_id, headers=headers)[1].outcome


def dead_letter_copy(record: Any, outcome: Outcome) -> DeadLetter:
    """The dead-letter copy of a consumed record: original key, value and headers, plus why and whence.

    Earlier `dlq_*` headers (a message sent back from the dead-letter topic) are dropped, so that
    each name appears once. An original too big for the copy is cut, and `dlq_truncated` says what.

    A copy of a CloudEvent (binary mode: it has `ce_specversion`) stays one, and carries the reason
    as an extension attribute too, `ce_dlqreason` (CloudEvents names extensions in lowercase
    letters and digits only), so that a CloudEvents SDK reading the dead-letter topic gets it with
    the event. A message that was no CloudEvent is not made to look like a broken one.
    """
    key: bytes | None = record.key
    value: bytes | None = record.value
    headers = [
        (name, raw or b"")
        for name, raw in record.headers or ()
        if not name.startswith(("dlq_", DEAD_LETTER_CE_PREFIX))
    ]
    cloudevent = any(name == "ce_specversion" for name, _ in headers)
    truncated: list[str] = []
    if key is not None and len(key) > DEAD_LETTER_MAX_KEY_BYTES:
        key, truncated = key[:DEAD_LETTER_MAX_KEY_BYTES], [*truncated, "key"]
    header_bytes = sum(len(name.encode()) + len(raw) for name, raw in headers)
    if header_bytes > DEAD_LETTER_MAX_HEADER_BYTES:
        headers, header_bytes, truncated = [], 0, [*truncated, "headers"]
    room = DEAD_LETTER_MAX_BYTES - len(key or b"") - header_bytes
    if value is not None and len(value) > room:
        value, truncated = value[:room], [*truncated, f"value:{len(value)}"]
    ours = [
        ("dlq_reason", outcome.outcome),
        ("dlq_detail", outcome.detail[:DETAIL_CHARS]),
        ("dlq_original_topic", str(record.topic)),
        ("dlq_original_partition", str(record.partition)),
        ("dlq_original_offset", str(record.offset)),
    ]
    if truncated:
        ours.append(("dlq_truncated", ",".join(truncated)))
    if cloudevent and "headers" not in truncated:
        ours.append((DEAD_LETTER_CE_REASON, outcome.outcome))
    return DeadLetter(
        key=key, value=value, headers=[*headers, *((n, v.encode(errors="replace")) for n, v in ours)]
    )


def _consume(record: Any, dead_letter: DeadLetterSender) -> str:
    """Handle one record, dead-letter it if it cannot be handled, count it; returns its outcome."""
    position = f"{record.topic}/{record.partition}/{record.offset}"
    name, outcome = process_message(
        key=record.key, value=record.value, headers=record.headers, fallback_id=position
    )
    if outcome.outcome in DEAD_LETTER_REASONS:
        try:
            dead_letter(dead_letter_copy(record, outcome))
        except Exception as exc:
            raise DeadLetterUnavailable(
                f"the dead-letter copy of {position} ({outcome.outcome}) was not sent "
                f"({type(exc).__name__}: {exc}); its offset is not committed"
            ) from exc
        consumer_dead_lettered(outcome.outcome)
    event = name if outcome.outcome in _DISPATCHED and name in HANDLERS else "other"
    return consumer_message_counted(event, outcome.outcome)


def run(
    consumer: Any,
    *,
    dead_letter: DeadLetterSender,
    max_messages: int | None = None,
    timeout: float | None = None,
    stop: threading.Event | None = None,
) -> Counter[str]:
    """Poll and handle until stopped, `max_messages` handled, or `timeout` seconds passed.

    Offsets are committed after each poll, for the messages handled or dead-lettered. Raises
    `DeadLetterUnavailable` (after committing the messages before it) when a copy cannot be sent.
    """
    from kafka.structs import OffsetAndMetadata  # kafka-python only where a consumer runs

    outcomes: Counter[str] = Counter()
    stop = stop or threading.Event()
    deadline = time.monotonic() + timeout if timeout else None
    seen = 0
    while not stop.is_set():
        if deadline is not None and time.monotonic() >= deadline:
            break
        batches = consumer.poll(timeout_ms=500)
        offsets: dict[Any, Any] = {}
        try:
            for partition, records in batches.items():
                for record in records:
                    outcomes[_consume(record, dead_letter)] += 1
                    offsets[partition] = OffsetAndMetadata(record.offset + 1, "", -1)
                    seen += 1
                    if max_messages is not None and seen >= max_messages:
                        break
                if max_messages is not None and seen >= max_messages:
                    break
        except DeadLetterUnavailable:
            # What was done before the failed copy is committed still, if the broker lets us.
            if offsets:
                try:
                    consumer.commit(offsets=offsets)
                except Exception as exc:
                    logger.warning("offsets before the failed dead-letter copy not committed: %s", exc)
            raise
        if offsets:
            consumer.commit(offsets=offsets)
        if max_messages is not None and seen >= max_messages:
            break
    return outcomes
