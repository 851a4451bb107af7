"""One message cannot stop the consumer (issue 20): whatever a message is or makes its handler
raise, it ends that message only, logged on one line, counted, copied to the dead-letter topic
with its reason, and committed. Retries are for the database being away, within a bound.

The handler is the tests' own; `processing_result`'s schema is in
`profiles/tests/test_consumer_results.py`, the real broker in `test_consumer_hostile_kafka.py`.
"""

from __future__ import annotations

import json
import logging
import time
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import InterfaceError, OperationalError
from kafka.structs import OffsetAndMetadata, TopicPartition

from core import metrics
from notifications import consumer
from notifications.models import ProcessedEvent
from testing.metrics import scrape

from .test_consumer import FakeConsumer, record, value

pytestmark = pytest.mark.django_db

POISON_PILL = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
def handled(monkeypatch) -> list[dict]:
    seen: list[dict] = []
    monkeypatch.setitem(consumer.HANDLERS, "test_event", seen.append)
    return seen


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The consumer's sleeps between retries, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(consumer.time, "sleep", slept.append)
    return slept


def handler_raising(monkeypatch, *errors: BaseException) -> list[dict]:
    """A `test_event` handler that raises `errors` in turn, then takes the payload."""
    calls: list[dict] = []
    pending = list(errors)

    def handler(payload: dict) -> None:
        calls.append(payload)
        if pending:
            raise pending.pop(0)

    monkeypatch.setitem(consumer.HANDLERS, "test_event", handler)
    return calls


def nested(depth: int) -> bytes:
    """An object whose innermost list is `depth` levels down (the object itself is level 1)."""
    return b'{"event_id": "deep", "x": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


# --- what a message is ------------------------------------------------------------------------------


def test_the_poison_pill_is_too_deep_and_does_not_raise(handled):
    assert consumer.handle_message(key=b"test_event", value=POISON_PILL, fallback_id="t/0/0") == "too_deep"
    assert handled == []


def test_nesting_past_max_depth_is_too_deep_even_when_the_parser_copes(handled):
    assert consumer.handle_message(
        key=b"test_event", value=nested(consumer.MAX_DEPTH + 1), fallback_id="t/0/1"
    ) == ("too_deep")
    assert consumer.handle_message(
        key=b"test_event", value=nested(consumer.MAX_DEPTH), fallback_id="t/0/2"
    ) == ("handled")
    assert len(handled) == 1


def test_a_message_over_the_bound_is_refused_unread(handled, monkeypatch, settings):
    settings.PROCESSING_RESULT_MAX_BYTES = 1000
    limit = 1000 + consumer.ENVELOPE_BYTES
    parsed: list[object] = []

    def loads(text: object) -> object:
        parsed.append(text)
        return json.loads(text)  # type: ignore[arg-type]

    monkeypatch.setattr(consumer, "json", SimpleNamespace(loads=loads))
    big = b'{"event_id": "big", "result": "' + b"x" * (3 * 1024 * 1024) + b'"}'

    assert consumer.handle_message(key=b"test_event", value=big, fallback_id="t/0/0") == "too_large"
    assert parsed == []
    head = b'{"event_id": "fits", "pad": "'
    at_limit = head + b"x" * (limit - len(head) - 2) + b'"}'
    assert len(at_limit) == limit
    assert consumer.handle_message(key=b"test_event", value=at_limit, fallback_id="t/0/1") == "handled"
    assert len(parsed) == 1
    assert (
        consumer.handle_message(key=b"test_event", value=at_limit + b" ", fallback_id="t/0/2") == "too_large"
    )
    assert len(parsed) == 1


@pytest.mark.parametrize(
    "raw",
    [b'{"a": "\xff"}', '{"event_id": "utf16"}'.encode("utf-16"), b"\xef\xbb\xbf{}", b"[]", b"7"],
    ids=["bad-utf8", "utf16", "bom", "array", "number"],
)
def test_what_is_not_a_utf8_json_object_is_malformed(handled, raw):
    assert consumer.handle_message(key=b"test_event", value=raw, fallback_id="t/0/0") == "malformed"
    assert handled == []


# --- what the handler raises -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "error", [RecursionError("deep"), MemoryError(), RuntimeError("a bug"), TypeError("x")]
)
def test_a_handler_raising_anything_fails_that_message_once_without_retries(
    monkeypatch, sleeps, caplog, error
):
    calls = handler_raising(monkeypatch, error, error, error)

    outcome = consumer.handle_message(key=b"test_event", value=value(event_id="e1"), fallback_id="t/0/0")

    assert outcome == "failed"
    assert len(calls) == 1
    assert sleeps == []
    assert not ProcessedEvent.objects.exists()
    [line] = [r.getMessage() for r in caplog.records if "cannot be handled" in r.getMessage()]
    assert type(error).__name__ in line
    assert "test_consumer_dead_letters.py" in line  # where it was raised, none of the message


def test_invalid_raised_by_a_handler_is_invalid_and_not_retried(monkeypatch, sleeps):
    calls = handler_raising(monkeypatch, consumer.InvalidMessage("no such thing"))

    assert (
        consumer.handle_message(key=b"test_event", value=value(event_id="e1"), fallback_id="t/0/0")
        == "invalid"
    )
    assert len(calls) == 1
    assert sleeps == []


def test_a_validator_runs_before_the_transaction_and_its_refusal_is_invalid(monkeypatch, handled, sleeps):
    def validate(payload: dict) -> dict:
        if payload.get("n") != 1:
            raise consumer.InvalidMessage(f"n must be 1, got {consumer.shown(payload.get('n'))}")
        return {"n": "checked"}

    monkeypatch.setitem(consumer.VALIDATORS, "test_event", validate)

    assert consumer.handle_message(
        key=b"test_event", value=value(event_id="a", n=2), fallback_id="t/0/0"
    ) == ("invalid")
    assert not ProcessedEvent.objects.exists()  # refused before the event was recorded
    assert consumer.handle_message(
        key=b"test_event", value=value(event_id="b", n=1), fallback_id="t/0/1"
    ) == ("handled")
    assert handled == [{"n": "checked"}]
    assert sleeps == []


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_the_database_away_once_is_retried_and_the_message_handled(monkeypatch, sleeps, error):
    calls = handler_raising(monkeypatch, error("server closed the connection"))

    assert (
        consumer.handle_message(key=b"test_event", value=value(event_id="e1"), fallback_id="t/0/0")
        == "handled"
    )
    assert len(calls) == 2
    assert sleeps == [consumer.RETRY_FIRST_DELAY]
    assert ProcessedEvent.objects.filter(event_id="e1").count() == 1


def test_the_database_away_for_good_fails_the_message_within_the_retry_budget(monkeypatch, caplog):
    calls: list[dict] = []

    def away(payload: dict) -> None:
        calls.append(payload)
        raise OperationalError("could not connect to server")

    monkeypatch.setitem(consumer.HANDLERS, "test_event", away)
    monkeypatch.setattr(consumer, "RETRY_BUDGET_SECONDS", 0.6)
    monkeypatch.setattr(consumer, "RETRY_FIRST_DELAY", 0.05)
    started = time.monotonic()

    outcome = consumer.handle_message(key=b"test_event", value=value(event_id="e1"), fallback_id="t/0/0")

    assert outcome == "failed"
    assert time.monotonic() - started <= 0.6 + 0.2
    assert len(calls) >= 3  # 0.05 + 0.1 + 0.2 of sleeps fit the budget, 0.4 more would not
    assert "retries spent" in caplog.text


def test_the_default_retry_budget_holds_a_partition_for_seconds_not_minutes():
    assert 0 < consumer.RETRY_BUDGET_SECONDS <= 10
    assert consumer.RETRY_FIRST_DELAY <= consumer.RETRY_MAX_DELAY <= consumer.RETRY_BUDGET_SECONDS


# --- CloudEvents headers ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, b"", b"partition-by-this"])
def test_ce_type_names_the_event_whatever_the_key(handled, key):
    headers = [("ce_type", b"test_event"), ("ce_id", b"ce-1"), ("ce_specversion", b"1.0")]

    outcome = consumer.handle_message(key=key, value=value(n=1), headers=headers, fallback_id="t/0/0")

    assert outcome == "handled"
    assert handled == [{"n": 1}]
    assert ProcessedEvent.objects.get().event_id == "ce-1"  # the CloudEvents id, when the payload has none


def test_without_ce_type_the_key_names_the_event(handled):
    headers = [("content-type", b"application/json")]
    assert consumer.handle_message(
        key=b"test_event", value=value(n=1), headers=headers, fallback_id="t/0/0"
    ) == ("handled")


# --- the dead-letter copy, the commit, the log line, the counters -----------------------------------------


class Letters(list):
    """A dead-letter sender that keeps the copies, or refuses from the `fail_from`th on."""

    def __init__(self, fail_from: int | None = None) -> None:
        super().__init__()
        self.fail_from = fail_from

    def __call__(self, letter: consumer.DeadLetter) -> None:
        if self.fail_from is not None and len(self) + 1 >= self.fail_from:
            raise ConnectionError("broker away")
        self.append(letter)


def test_every_reason_is_copied_with_its_headers_and_committed(handled, monkeypatch, settings):
    settings.PROCESSING_RESULT_MAX_BYTES = 200_000  # the poison pill fits: it is refused for its depth
    monkeypatch.setitem(consumer.HANDLERS, "boom", lambda payload: 1 / 0)

    def validate(payload: dict) -> dict:
        if "bad" in payload:
            raise consumer.InvalidMessage("bad")
        return payload

    monkeypatch.setitem(consumer.VALIDATORS, "test_event", validate)
    original = [("ce_source", b"ai"), ("dlq_reason", b"stale"), ("trace", None)]
    batch = [
        record(0, raw=b"{not json", headers=original),
        record(1, raw=b"x" * 300_000),
        record(2, raw=POISON_PILL),
        record(3, raw=value(event_id="e3", bad=1)),
        record(4, key=b"nobody"),
        record(5, key=b"boom"),
        record(6),
    ]
    fake = FakeConsumer([batch])
    letters = Letters()

    outcomes = consumer.run(fake, dead_letter=letters, max_messages=7, timeout=20)

    reasons = ["malformed", "too_large", "too_deep", "invalid", "unknown", "failed"]
    assert outcomes == {**dict.fromkeys(reasons, 1), "handled": 1}
    assert [dict(letter.headers)["dlq_reason"].decode() for letter in letters] == reasons
    assert sorted(reasons) == sorted(metrics.DEAD_LETTER_REASONS)
    assert fake.commits == [{TopicPartition("results", 0): OffsetAndMetadata(7, "", -1)}]
    assert [p["event_id"] for p in handled] == ["e6"]

    first = letters[0]
    assert (first.key, first.value) == (b"test_event", b"{not json")
    assert first.headers[:2] == [
        ("ce_source", b"ai"),
        ("trace", b""),
    ]  # the original's, the stale dlq_ dropped
    ours = dict(first.headers)
    assert ours["dlq_original_topic"] == b"results"
    assert (ours["dlq_original_partition"], ours["dlq_original_offset"]) == (b"0", b"0")
    assert b"JSONDecodeError" in ours["dlq_detail"]
    assert [name for name, _ in first.headers].count("dlq_reason") == 1
    assert letters[1].value == b"x" * 300_000  # too large to read, not to copy
    assert b"ZeroDivisionError" in dict(letters[5].headers)["dlq_detail"]


def test_an_original_too_big_for_a_copy_is_cut_and_says_so(handled):
    huge = b"x" * (consumer.DEAD_LETTER_MAX_BYTES + 10)
    letters = Letters()

    consumer.run(FakeConsumer([[record(0, raw=huge, key=b"k" * 5000)]]), dead_letter=letters, max_messages=1)

    [letter] = letters
    assert len(letter.key) == consumer.DEAD_LETTER_MAX_KEY_BYTES
    assert len(letter.key) + len(letter.value) == consumer.DEAD_LETTER_MAX_BYTES
    assert dict(letter.headers)["dlq_truncated"] == f"key,value:{len(huge)}".encode()


def test_original_headers_too_big_for_a_copy_are_left_out_and_say_so(handled):
    headers = [(f"h{i}", b"v" * 1000) for i in range(70)]
    letters = Letters()

    consumer.run(FakeConsumer([[record(0, raw=b"{", headers=headers)]]), dead_letter=letters, max_messages=1)

    [letter] = letters
    assert [name for name, _ in letter.headers if not name.startswith("dlq_")] == []
    assert (letter.value, dict(letter.headers)["dlq_truncated"]) == (b"{", b"headers")


def test_when_the_copy_cannot_be_sent_its_offset_is_not_committed_and_run_stops(handled):
    fake = FakeConsumer([[record(0), record(1, raw=b"{bad"), record(2)]])

    with pytest.raises(consumer.DeadLetterUnavailable, match="results/0/1"):
        consumer.run(fake, dead_letter=Letters(fail_from=1), timeout=20)

    assert fake.commits == [{TopicPartition("results", 0): OffsetAndMetadata(1, "", -1)}]
    assert [p["event_id"] for p in handled] == ["e0"]  # nothing after it was read either


def test_the_log_line_is_one_line_whatever_the_message_holds(monkeypatch, caplog):
    forged = "x\n2024-01-01 CRITICAL accounts.security admin password changed"
    handler_raising(monkeypatch, ValueError(forged))
    caplog.set_level(logging.INFO)
    consumer.run(
        FakeConsumer([[record(0, key=forged.encode()), record(1)]]),  # an unknown name; a failing handler
        dead_letter=Letters(),
        max_messages=2,
    )

    lines = [r.getMessage() for r in caplog.records if r.name == "notifications.consumer"]
    assert len(lines) == 2
    assert all("\n" not in line and "\\n2024-01-01 CRITICAL" in line for line in lines)


def test_dead_letters_are_counted_by_reason_and_outside_names_are_no_label(client, handled):
    before = scrape(client)
    consumer.run(
        FakeConsumer(
            [[record(0, raw=POISON_PILL), record(1, raw=POISON_PILL), record(2, key=b"made-up-name")]]
        ),
        dead_letter=Letters(),
        max_messages=3,
    )
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("user_service_consumer_dead_letters_total", reason="too_deep") == 2
    assert moved("user_service_consumer_dead_letters_total", reason="unknown") == 1
    assert moved("user_service_consumer_dead_letters_total", reason="invalid") == 0
    assert moved("user_service_consumer_messages_total", event="other", outcome="too_deep") == 2
    assert "made-up-name" not in after.text
    for reason in metrics.DEAD_LETTER_REASONS:  # every series there from the start
        assert f'user_service_consumer_dead_letters_total{{reason="{reason}"}}' in after.text


def test_consume_events_refuses_to_dead_letter_into_the_topic_it_reads(settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]
    settings.KAFKA_TOPIC_AI_RESULTS_DLQ = settings.KAFKA_TOPIC_AI_RESULTS
    with pytest.raises(CommandError, match="KAFKA_TOPIC_AI_RESULTS_DLQ"):
        call_command("consume_events", "--max-messages", "1")
