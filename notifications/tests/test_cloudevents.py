"""Every Kafka message is a CloudEvent in binary mode (issue 25), and the value is unchanged.

Proven with the `cloudevents` SDK, as another service reads: its Kafka binding's `from_binary`
gets the outbox row's id, type, source and data back, here and through a real broker.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from types import SimpleNamespace

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary, to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import user_set_roles
from accounts.tests.support import PASSWORD
from notifications import consumer, outbox
from notifications.models import OutboxEvent, ProcessedEvent
from notifications.services import event_emit

from .helpers import read_topic, unique_name


def as_cloudevent(headers: dict[str, bytes], key: bytes | None, value: bytes) -> CloudEvent:
    """What a consumer written with the SDK does with a record."""
    return from_binary(KafkaMessage(headers=headers, key=key, value=value), JSONFormat())  # type: ignore[return-value]


def row(name: str, payload: dict) -> OutboxEvent:
    return event_emit(name=name, payload=payload)


# --- the message of an outbox row ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_headers_are_the_binary_mode_attributes_and_the_value_is_the_json_as_before(settings):
    settings.EVENTS_SOURCE = "/platform/users"
    user_id = str(uuid.uuid4())
    event = row("user_restored", {"user_id": user_id})

    message = outbox.kafka_message(event)

    assert message.key == b"user_restored"
    assert message.value == outbox._encode(event.payload)  # byte for byte what consumers read before
    assert json.loads(message.value) == event.payload
    assert message.headers == {
        "ce_specversion": b"1.0",
        "ce_id": str(event.id).encode(),
        "ce_source": b"/platform/users",
        "ce_type": b"user_restored",
        "ce_time": message.headers["ce_time"],
        "ce_subject": user_id.encode(),
        "content-type": b"application/json",
    }
    assert event.payload["event_id"] == str(event.id)
    ce_time = datetime.fromisoformat(message.headers["ce_time"].decode().replace("Z", "+00:00"))
    assert ce_time == datetime.fromisoformat(event.payload["occurred_at"])


@pytest.mark.django_db
def test_an_event_without_a_user_has_no_subject():
    message = outbox.kafka_message(
        OutboxEvent.objects.create(topic="t", key="thing_happened", payload={"n": 1})
    )
    assert "ce_subject" not in message.headers
    assert message.headers["ce_id"] == str(OutboxEvent.objects.get().id).encode()


@pytest.mark.django_db
def test_the_value_keeps_its_utf8_and_is_not_escaped():
    event = row("new_user", {"user_id": str(uuid.uuid4()), "username": "иван", "full_name": "Иван Петров",
                             "email": "", "created_at": "2026-12-07T10:00:00+00:00"})  # fmt: skip
    message = outbox.kafka_message(event)
    assert "Иван Петров".encode() in message.value
    assert b"\\u" not in message.value


@pytest.mark.django_db
def test_the_sdk_reads_the_message_back():
    user_id = str(uuid.uuid4())
    event = row("role_changed", {"user_id": user_id, "roles": ["admin", "user"], "previous_roles": ["user"]})
    message = outbox.kafka_message(event)

    read = as_cloudevent(message.headers, message.key, message.value)

    assert read.get_id() == str(event.id)
    assert read.get_type() == "role_changed"
    assert read.get_source() == "/user-service"
    assert read.get_subject() == user_id
    assert read.get_data() == event.payload


# --- through a real broker, read by a consumer written with the SDK ---------------------------------


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.usefixtures("commit_per_request", "no_producer")
def test_a_cloudevents_consumer_reads_new_user_and_role_changed_as_the_outbox_stored_them(
    settings, kafka_broker
):
    topic = unique_name()
    settings.KAFKA_BOOTSTRAP_SERVERS = [kafka_broker.bootstrap]
    settings.KAFKA_TOPIC_DATA = topic
    registered = APIClient().post(
        "/api/v1/auth/register",
        {"username": "ada", "email": "ada@example.com", "password": PASSWORD, "full_name": "Ada"},
        format="json",
    )
    assert registered.status_code == 201, registered.content
    user_set_roles(user=User.objects.get(username="ada"), roles=["user", "moderator"])
    rows = {str(r.id): r for r in OutboxEvent.objects.filter(topic=topic)}
    assert sorted(r.key for r in rows.values()) == ["new_user", "role_changed"]

    assert outbox.outbox_publish() == 2
    records = read_topic(kafka_broker.bootstrap, topic, expect=2)

    assert len(records) == 2
    for record in records:
        event = as_cloudevent(dict(record.headers), record.key, record.value)
        stored = rows.pop(event.get_id())
        assert event.get_type() == stored.key == record.key.decode()
        assert event.get_source() == settings.EVENTS_SOURCE
        assert event.get_subject() == stored.payload["user_id"] == registered.json()["id"]
        assert event.get_data() == stored.payload
        assert json.loads(record.value) == stored.payload  # a consumer of the value alone sees no change
    assert rows == {}


# --- the consumer: processing_result with or without the headers ----------------------------------


@pytest.fixture
def processing(user):
    from profiles.models import Processing, Requirements, Resume

    return Processing.objects.create(
        user=user,
        resume=Resume.objects.create(user=user, text="Python"),
        requirements=Requirements.objects.create(user=user, text="Needs Python"),
    )


def result_message(processing, *, event_id: str | None) -> KafkaMessage:
    """A `processing_result` as an AI handler using the SDK would send it (binary mode)."""
    data = {"processing_id": str(processing.id), "status": "done", "score": 75, "result": {"fit": "good"}}
    if event_id is not None:
        data["event_id"] = event_id
    event = CloudEvent(
        {
            "type": "processing_result",
            "source": "/ai-handler",
            "id": "ce-7",
            "datacontenttype": "application/json",
        },
        data,
    )
    return to_binary(event, JSONFormat(), key_mapper=lambda _: b"processing_result")


@pytest.mark.django_db
@pytest.mark.parametrize("with_headers", [True, False], ids=["cloudevent", "plain"])
def test_the_consumer_applies_a_processing_result_with_or_without_the_headers(processing, with_headers):
    message = result_message(processing, event_id=str(uuid.uuid4()))
    headers = list(message.headers.items()) if with_headers else None

    outcome = consumer.handle_message(
        key=message.key, value=message.value, headers=headers, fallback_id="t/0/0"
    )

    assert outcome == "handled"
    processing.refresh_from_db()
    assert (processing.status, processing.score) == ("done", 75)


@pytest.mark.django_db
def test_a_cloudevent_without_event_id_is_deduplicated_by_ce_id(processing):
    message = result_message(processing, event_id=None)
    headers = list(message.headers.items())

    first = consumer.handle_message(key=None, value=message.value, headers=headers, fallback_id="t/0/0")
    again = consumer.handle_message(key=None, value=message.value, headers=headers, fallback_id="t/0/1")

    assert (first, again) == ("handled", "duplicate")
    assert ProcessedEvent.objects.get().event_id == "ce-7"


# --- the dead-letter copy -------------------------------------------------------------------------------


def record(headers: list | None, *, value: bytes = b"{nope") -> SimpleNamespace:
    return SimpleNamespace(topic="results", partition=0, offset=5, key=b"processing_result", value=value,
                           headers=headers)  # fmt: skip


def test_the_copy_of_a_cloudevent_carries_the_reason_as_an_extension_the_sdk_reads():
    ce = [("ce_specversion", b"1.0"), ("ce_id", b"x-1"), ("ce_source", b"/ai"), ("ce_type", b"processing_result"),
          ("content-type", b"application/json"), ("ce_dlqreason", b"stale")]  # fmt: skip
    letter = consumer.dead_letter_copy(record(ce, value=b'{"a": 1}'), consumer.Outcome("invalid", "score"))
    headers = dict(letter.headers)

    assert headers["dlq_reason"] == headers["ce_dlqreason"] == b"invalid"
    assert [name for name, _ in letter.headers].count("ce_dlqreason") == 1  # the stale one is replaced
    read = as_cloudevent(headers, letter.key, letter.value or b"")
    assert read.get_extension("dlqreason") == "invalid"
    assert (read.get_id(), read.get_type()) == ("x-1", "processing_result")


def test_the_copy_of_a_plain_message_is_not_dressed_as_a_cloudevent():
    letter = consumer.dead_letter_copy(record([("trace", b"1")]), consumer.Outcome("malformed", "not JSON"))
    names = [name for name, _ in letter.headers]

    assert "dlq_reason" in names
    assert not any(name.startswith("ce_") for name in names)
