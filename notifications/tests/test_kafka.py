"""The relay against a real Kafka-protocol broker (Tansu): the messages other services read, and
the broker being down, then back: every event arrives, each `event_id` once, and the API calls that
emitted them never waited for it.

Each test writes to topics of its own: the session broker is shared by two whole runs in CI.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.support import PASSWORD, bearer
from notifications import outbox
from notifications.models import OutboxEvent
from testing.kafka import read_topic, unique_name

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db,
    pytest.mark.usefixtures("commit_per_request", "no_producer"),
]

API = "/api/v1"


def register(username: str, full_name: str = "") -> dict:
    response = APIClient().post(
        f"{API}/auth/register",
        {
            "username": username,
            "email": f"{username}@example.com",
            "password": PASSWORD,
            "full_name": full_name,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_published_events_carry_the_event_name_as_key_and_the_contract_fields(settings, kafka_broker):
    topic = unique_name()
    settings.KAFKA_BOOTSTRAP_SERVERS = [kafka_broker.bootstrap]
    settings.KAFKA_TOPIC_DATA = topic
    me = register("grace", "Grace Hopper")
    login = {"username": "grace", "password": PASSWORD}
    client = bearer(APIClient().post(f"{API}/auth/login", login, format="json").json()["access"])

    assert (
        client.patch(f"{API}/users/me", {"full_name": "Rear Admiral Hopper"}, format="json").status_code
        == 200
    )
    rows = {str(row.id): row for row in OutboxEvent.objects.filter(topic=topic)}
    assert len(rows) == 2

    assert outbox.outbox_publish() == 2

    records = read_topic(kafka_broker.bootstrap, topic, expect=2)
    assert len(records) == 2
    by_key = {record.key: json.loads(record.value) for record in records}
    assert set(by_key) == {b"new_user", b"user_updated"}
    new_user = by_key[b"new_user"]
    user = User.objects.get(username="grace")
    assert set(new_user) == {
        "event_id",
        "occurred_at",
        "user_id",
        "username",
        "full_name",
        "email",
        "email_verified",
        "created_at",
    }
    assert new_user["user_id"] == me["id"] == str(user.id)
    assert (new_user["username"], new_user["full_name"], new_user["email"]) == (
        "grace",
        "Grace Hopper",
        "grace@example.com",
    )
    assert datetime.fromisoformat(new_user["created_at"]) == user.created_at
    datetime.fromisoformat(new_user["occurred_at"])
    assert by_key[b"user_updated"]["full_name"] == "Rear Admiral Hopper"
    for value in by_key.values():
        assert value == rows[value["event_id"]].payload  # the stored payload, as stored
    assert not OutboxEvent.objects.filter(topic=topic, published_at__isnull=True).exists()


def test_broker_down_then_up_every_event_arrives_once_and_the_api_never_waits(
    settings, fresh_kafka_broker, monkeypatch
):
    """Down: the API answers at normal speed without touching Kafka, the relay fails quickly and the
    rows wait. Up again: everything goes out, each event_id exactly once."""
    import kafka

    topic = unique_name()
    settings.KAFKA_BOOTSTRAP_SERVERS = [fresh_kafka_broker.bootstrap]  # nothing listens there yet
    settings.KAFKA_TOPIC_DATA = topic
    settings.KAFKA_MAX_BLOCK_MS = 500
    settings.KAFKA_REQUEST_TIMEOUT_MS = 1000
    # kafka-python 3 waits `bootstrap_timeout_ms` (30 s by default) in the producer's constructor,
    # which the relay does not set (see test_outbox: the bounded-wait test reports it). Bound it
    # here, so this test checks delivery, not that wait; an explicit value from the relay wins.
    real_producer = kafka.KafkaProducer
    producers_made = []

    def producer(**config):
        producers_made.append(config)
        config.setdefault("bootstrap_timeout_ms", settings.KAFKA_MAX_BLOCK_MS)
        return real_producer(**config)

    monkeypatch.setattr(kafka, "KafkaProducer", producer)

    timings = []
    for index in range(3):
        started = time.monotonic()
        register(f"offline{index}")
        timings.append(time.monotonic() - started)
    assert producers_made == []  # the request path never reaches for Kafka: no producer was made
    assert max(timings) < 1.0, timings

    started = time.monotonic()
    assert outbox.outbox_publish() == 0
    assert time.monotonic() - started < 10
    pending = list(OutboxEvent.objects.filter(topic=topic))
    assert len(pending) == 3
    for row in pending:
        assert row.published_at is None
        assert row.attempts == 1
        assert row.last_error

    fresh_kafka_broker.start()
    assert outbox.outbox_publish() == 3
    assert outbox.outbox_publish() == 0
    assert not OutboxEvent.objects.filter(topic=topic, published_at__isnull=True).exists()
    assert set(OutboxEvent.objects.filter(topic=topic).values_list("attempts", flat=True)) == {2}

    records = read_topic(fresh_kafka_broker.bootstrap, topic, expect=3)
    event_ids = [json.loads(record.value)["event_id"] for record in records]
    assert sorted(event_ids) == sorted(str(row.id) for row in pending)  # all of them, each once
    assert {record.key for record in records} == {b"new_user"}
    outbox._drop_producer()  # while the broker still listens: closing is quick then
