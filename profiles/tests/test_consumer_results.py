"""`processing_result` against its schema (API.md → Events; issue 20, "Results are not validated"):
a bad id, status, score or result is dead-lettered as `invalid` before any transaction, never
retried; a message too large is refused unread; and a valid result after any of them is applied.
The real broker is in `test_consumer_hostile_kafka.py`."""

from __future__ import annotations

import math
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from notifications import consumer
from notifications.models import Kind, Notification, ProcessedEvent
from notifications.tests.test_consumer import FakeConsumer, record
from profiles.models import Processing

from .support import POISON_PILL, events, processing_of, result_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def processing(user: Any) -> Processing:
    return processing_of(user)


@pytest.fixture
def no_sleep(monkeypatch: Any) -> None:
    """A retry would sleep: here that fails the test."""

    def sleep(seconds: float) -> None:
        raise AssertionError(f"the consumer slept {seconds} s: a retry")

    monkeypatch.setattr(consumer.time, "sleep", sleep)


def deliver(raw: bytes, **kwargs: Any) -> str:
    return consumer.handle_message(key=b"processing_result", value=raw, fallback_id="t/0/0", **kwargs)


def assert_untouched(processing: Processing) -> None:
    processing.refresh_from_db()
    assert (processing.status, processing.result, processing.score) == ("queued", None, None)
    assert not Notification.objects.filter(kind=Kind.PROCESSING).exists()
    assert events("new_processing") == []
    assert not ProcessedEvent.objects.exists()  # refused before the transaction


@pytest.mark.parametrize(
    "score",
    [-1e308, 101, -0.5, True, False, "50", [50], math.nan, math.inf, -math.inf, 10**400],
    ids=repr,
)
def test_a_score_that_is_not_a_finite_number_from_0_to_100_is_invalid(processing, no_sleep, caplog, score):
    # json.dumps writes NaN and Infinity as such, and json.loads reads them: the AI handler might too.
    assert deliver(result_message(processing, score=score)) == "invalid"
    assert_untouched(processing)
    assert "score must be a finite number from 0 to 100 or null" in caplog.text


@pytest.mark.parametrize("score", [0, 100, 42.5, None])
def test_a_score_from_0_to_100_or_null_is_stored(processing, score):
    assert deliver(result_message(processing, score=score)) == "handled"
    processing.refresh_from_db()
    assert (processing.status, processing.score) == ("done", None if score is None else float(score))


@pytest.mark.parametrize(
    "fields",
    [
        {"status": ["done"]},
        {"status": {"done": True}},
        {"status": "queued"},
        {"status": None},
        {"processing_id": ["x"]},
        {"processing_id": 7},
        {"processing_id": "not-a-uuid"},
    ],
    ids=repr,
)
def test_a_bad_status_or_id_is_invalid_at_once_not_retried(processing, no_sleep, fields):
    assert deliver(result_message(processing, **fields)) == "invalid"
    assert_untouched(processing)


def test_a_result_over_its_limit_serialized_is_invalid(processing, settings, no_sleep, caplog):
    settings.PROCESSING_RESULT_MAX_BYTES = 1000
    assert (
        deliver(result_message(processing, result={"text": "й" * 500})) == "invalid"
    )  # 1,000 bytes of UTF-8
    assert "over PROCESSING_RESULT_MAX_BYTES" in caplog.text
    assert_untouched(processing)
    assert deliver(result_message(processing, result="й" * 499)) == "handled"  # 998 + the quotes


def test_a_result_holding_nan_is_invalid(processing, no_sleep):
    assert deliver(result_message(processing, result={"similarity": math.nan})) == "invalid"
    assert_untouched(processing)


def test_a_3_mb_result_is_refused_unread(processing, monkeypatch):
    parsed: list[Any] = []
    monkeypatch.setattr(consumer, "json", SimpleNamespace(loads=lambda text: parsed.append(text)))

    assert deliver(result_message(processing, result="x" * 3_000_000)) == "too_large"
    assert parsed == []
    assert_untouched(processing)


def test_a_result_for_no_processing_is_ignored_and_logged_not_dead_lettered(processing, caplog):
    letters: list[consumer.DeadLetter] = []
    raw = result_message(processing, processing_id=str(uuid.uuid4()))

    outcomes = consumer.run(
        FakeConsumer([[record(0, key=b"processing_result", raw=raw)]]),
        dead_letter=letters.append,
        max_messages=1,
    )

    assert outcomes == {"handled": 1}
    assert letters == []
    assert "unknown or deleted" in caplog.text


def test_with_ce_type_and_no_key_the_result_is_applied(processing):
    headers = [("ce_type", b"processing_result"), ("ce_specversion", b"1.0"), ("ce_id", b"ce-42")]
    assert (
        consumer.handle_message(
            key=None, value=result_message(processing, event_id=None), headers=headers, fallback_id="t/0/0"
        )
        == "handled"
    )
    processing.refresh_from_db()
    assert processing.status == "done"
    assert ProcessedEvent.objects.get().event_id == "ce-42"


def test_a_valid_result_behind_every_kind_of_bad_one_is_applied(processing, user, no_sleep, monkeypatch):
    """One partition, as in production: each bad message is dead-lettered and the next one read."""
    bad = [
        (POISON_PILL, "too_deep"),
        (result_message(processing, result="x" * 3_000_000), "too_large"),
        (result_message(processing, score=-1e308), "invalid"),
        (result_message(processing, score=101), "invalid"),
        (result_message(processing, score=True), "invalid"),
        (result_message(processing, score=math.nan), "invalid"),
        (result_message(processing, status=["done"]), "invalid"),
        (b"\xff{", "malformed"),
    ]
    valid = result_message(processing, score=92, result={"verdict": "a match"})
    records = [record(i, key=b"processing_result", raw=raw) for i, (raw, _) in enumerate(bad)]
    fake = FakeConsumer([[*records, record(len(bad), key=b"processing_result", raw=valid)]])
    letters: list[consumer.DeadLetter] = []

    outcomes = consumer.run(fake, dead_letter=letters.append, max_messages=len(bad) + 1, timeout=30)

    assert outcomes["handled"] == 1
    assert [dict(letter.headers)["dlq_reason"].decode() for letter in letters] == [
        reason for _, reason in bad
    ]
    assert [letter.value for letter in letters[2:]] == [raw for raw, _ in bad[2:]]
    assert letters[0].value == POISON_PILL
    # The 3 MB one is cut to fit a Kafka message, and says so.
    cut = letters[1]
    assert bad[1][0].startswith(cut.value)
    assert dict(cut.headers)["dlq_truncated"] == f"value:{len(bad[1][0])}".encode()
    processing.refresh_from_db()
    assert (processing.status, processing.score, processing.result) == ("done", 92.0, {"verdict": "a match"})
    note = Notification.objects.get(user=user, kind=Kind.PROCESSING)
    assert note.data == {"processing_id": str(processing.id), "status": "done", "score": 92.0}
    assert [e["processing_id"] for e in events("new_processing")] == [str(processing.id)]
    [commit] = fake.commits
    assert [offset.offset for offset in commit.values()] == [len(bad) + 1]
