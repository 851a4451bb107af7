"""Issue 20's consumer, with the real broker (Tansu): the poison pill, a 3 MB result, invalid results,
a malformed and an unknown message, then valid results, all on one partition as in production.
`manage.py consume_events` applies the valid ones, copies every other one to the dead-letter topic
with its reason, commits, and a restart sees none of them again. A copy the broker does not take
stops the command with that message uncommitted: the next start copies it.

Topics and the consumer group are the test's own: the session broker is shared by two runs in CI.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from core.metrics import DEAD_LETTER_REASONS
from notifications.management.commands import consume_events
from notifications.models import Kind, Notification
from testing.kafka import produce, read_topic, unique_name
from testing.metrics import scrape

from .support import POISON_PILL, processing_of, result_message

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


@pytest.fixture
def topics(settings: Any, kafka_broker: Any) -> Any:
    settings.KAFKA_BOOTSTRAP_SERVERS = [kafka_broker.bootstrap]
    settings.KAFKA_TOPIC_AI_RESULTS = unique_name("results")
    settings.KAFKA_TOPIC_AI_RESULTS_DLQ = unique_name("results-dlq")
    settings.KAFKA_CONSUMER_GROUP = unique_name("group")
    return settings


def produce_results(topics: Any, messages: list[tuple[bytes | None, bytes, list]]) -> None:
    """On one partition, as in production; with room for the 3 MB result: the results topic may
    take what our own dead-letter copy may not."""
    produce(
        topics.KAFKA_BOOTSTRAP_SERVERS[0],
        topics.KAFKA_TOPIC_AI_RESULTS,
        messages,
        partition=0,
        max_request_size=8 * 1024 * 1024,
    )


def consume(*args: str) -> str:
    out = io.StringIO()
    call_command("consume_events", *args, stdout=out)
    return out.getvalue().strip()


def test_hostile_results_are_dead_lettered_the_valid_ones_applied_and_none_seen_again(topics, user, client):
    first, second = processing_of(user), processing_of(user)
    key = b"processing_result"
    bad = [
        (key, POISON_PILL, "too_deep"),
        (key, result_message(first, result="x" * 3_000_000), "too_large"),
        (key, result_message(first, score=-1e308), "invalid"),
        (key, result_message(first, status=["done"]), "invalid"),
        (key, result_message(first, score=math.nan), "invalid"),
        (key, result_message(first, score=True), "invalid"),
        (key, b"\xff not json", "malformed"),
        (b"someone_elses_event", result_message(first), "unknown"),
    ]
    valid = [
        (key, result_message(first, score=92), []),
        # The CloudEvents binding: no key, the type in `ce_type`.
        (
            None,
            result_message(second, score=40),
            [("ce_type", b"processing_result"), ("ce_specversion", b"1.0")],
        ),
    ]
    produce_results(topics, [(k, v, [("ce_source", b"ai-handler")]) for k, v, _ in bad] + valid)
    total = len(bad) + len(valid)
    before = scrape(client)

    summary = consume("--max-messages", str(total), "--timeout", "60")

    assert summary == "handled 2, invalid 4, malformed 1, too_deep 1, too_large 1, unknown 1"
    for processing, score in ((first, 92.0), (second, 40.0)):
        processing.refresh_from_db()
        assert (processing.status, processing.score) == ("done", score)
    assert Notification.objects.filter(user=user, kind=Kind.PROCESSING).count() == 2
    after = scrape(client)
    name = "user_service_consumer_dead_letters_total"
    moved = {r: after.value(name, reason=r) - before.value(name, reason=r) for r in DEAD_LETTER_REASONS}
    assert moved == {**dict.fromkeys(DEAD_LETTER_REASONS, 0), **Counter(reason for _, _, reason in bad)}

    copies = read_topic(topics.KAFKA_BOOTSTRAP_SERVERS[0], topics.KAFKA_TOPIC_AI_RESULTS_DLQ, expect=len(bad))
    assert [dict(c.headers)["dlq_reason"].decode() for c in copies] == [reason for _, _, reason in bad]
    assert [dict(c.headers)["dlq_original_offset"] for c in copies] == [
        str(i).encode() for i in range(len(bad))
    ]
    for copy, (k, v, _) in zip(copies, bad, strict=True):
        headers = dict(copy.headers)
        assert copy.key == k
        assert headers["ce_source"] == b"ai-handler"
        assert headers["dlq_original_topic"] == topics.KAFKA_TOPIC_AI_RESULTS.encode()
        if "dlq_truncated" in headers:  # the 3 MB one, cut to fit a Kafka message
            assert headers["dlq_truncated"] == f"value:{len(v)}".encode()
            assert v.startswith(copy.value)
        else:
            assert copy.value == v

    # A restart (a new member of the group) starts after them. It is given one new result and stops
    # at the first message it reads: had any old offset not been committed, that would be the
    # poison pill again (too_deep 1), and a new copy would be in the dead-letter topic.
    third = processing_of(user)
    produce_results(topics, [(key, result_message(third), [])])
    assert consume("--max-messages", "1", "--timeout", "30") == "handled 1"
    third.refresh_from_db()
    assert third.status == "done"
    again = read_topic(topics.KAFKA_BOOTSTRAP_SERVERS[0], topics.KAFKA_TOPIC_AI_RESULTS_DLQ, expect=len(bad))
    assert len(again) == len(bad)


def test_a_copy_the_broker_does_not_take_stops_the_command_and_the_message_is_read_again(topics, monkeypatch):
    produce_results(topics, [(b"processing_result", b"{", [])])

    def refused(self: Any, letter: Any) -> None:
        from kafka.errors import KafkaTimeoutError

        raise KafkaTimeoutError("Failed to update metadata after 5.0 secs.")

    with monkeypatch.context() as patched:
        patched.setattr(consume_events.KafkaDeadLetters, "__call__", refused)
        with pytest.raises(CommandError, match="not committed"):
            consume("--max-messages", "1", "--timeout", "30")

    assert consume("--max-messages", "1", "--timeout", "30") == "malformed 1"
    [copy] = read_topic(topics.KAFKA_BOOTSTRAP_SERVERS[0], topics.KAFKA_TOPIC_AI_RESULTS_DLQ, expect=1)
    assert (copy.value, dict(copy.headers)["dlq_reason"]) == (b"{", b"malformed")
