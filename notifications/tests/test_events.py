"""Events (API.md → Events): stored in the outbox in the transaction of the change, with the
contract's fields, `event_id` and `occurred_at`; nothing for a change that rolled back; no
network call while emitting."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD
from notifications import services
from notifications.models import OutboxEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]

API = "/api/v1"


def events(name: str) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(key=name).order_by("created_at"))


def assert_envelope(event: OutboxEvent) -> None:
    """`event_id` is the row id; `occurred_at` an ISO 8601 time; pending until the relay runs."""
    assert event.payload["event_id"] == str(event.id)
    uuid.UUID(event.payload["event_id"])
    assert datetime.fromisoformat(event.payload["occurred_at"]).tzinfo is not None
    assert event.published_at is None
    assert event.attempts == 0


def test_registration_emits_new_user_with_exactly_the_contract_fields(settings):
    response = APIClient().post(
        f"{API}/auth/register",
        {
            "username": "ada",
            "email": "Ada@Example.com",
            "password": PASSWORD,
            "full_name": "Ada Lovelace",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    user = User.objects.get(username="ada")

    [event] = events("new_user")

    assert event.topic == settings.KAFKA_TOPIC_DATA == "uploading_data"
    assert set(event.payload) == {
        "event_id",
        "occurred_at",
        "user_id",
        "username",
        "full_name",
        "email",
        "email_verified",
        "created_at",
    }
    assert event.payload["user_id"] == str(user.id) == response.json()["id"]
    assert event.payload["username"] == "ada"
    assert event.payload["full_name"] == "Ada Lovelace"
    assert event.payload["email"] == user.email
    assert datetime.fromisoformat(event.payload["created_at"]) == user.created_at
    assert_envelope(event)


def test_a_refused_registration_emits_nothing(user):
    before = OutboxEvent.objects.count()

    response = APIClient().post(
        f"{API}/auth/register",
        {"username": user.username, "email": "other@example.com", "password": PASSWORD},
        format="json",
    )

    assert response.status_code == 400
    assert OutboxEvent.objects.count() == before


def test_a_rolled_back_transaction_emits_nothing():
    class Boom(Exception):
        pass

    def change_that_fails():
        with transaction.atomic():
            services.event_emit(name="rolled_back", payload={"x": 1})
            raise Boom

    with pytest.raises(Boom):
        change_that_fails()

    assert not OutboxEvent.objects.filter(key="rolled_back").exists()


def test_a_failure_later_in_a_service_takes_its_event_back(user, monkeypatch):
    """The event and the change are one transaction: the change failing after the emit removes both."""
    from accounts import services as account_services

    def broken(*args, **kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr("accounts.services.users.audit_record", broken)
    with pytest.raises(RuntimeError):
        account_services.user_update(user_id=user.id, full_name="Changed Name")

    user.refresh_from_db()
    assert user.full_name != "Changed Name"
    assert not OutboxEvent.objects.filter(key="user_updated").exists()


def test_profile_update_emits_user_updated_with_what_changed(auth_client, user):
    response = auth_client.patch(f"{API}/users/me", {"full_name": "New Name"}, format="json")
    assert response.status_code == 200, response.content

    [event] = events("user_updated")
    assert set(event.payload) == {"event_id", "occurred_at", "user_id", "full_name"}
    assert event.payload["user_id"] == str(user.id)
    assert event.payload["full_name"] == "New Name"
    assert_envelope(event)

    auth_client.patch(f"{API}/users/me", {"full_name": "New Name"}, format="json")  # no change, no event
    assert len(events("user_updated")) == 1


def test_delete_and_restore_emit_user_deleted_and_user_restored(auth_client, user, password):
    response = auth_client.delete(f"{API}/users/me", {"password": password}, format="json")
    assert response.status_code == 204, response.content

    [deleted] = events("user_deleted")
    assert deleted.payload["user_id"] == str(user.id)
    user.refresh_from_db()
    # DjangoJSONEncoder writes milliseconds (ECMA-262 time format).
    assert abs(datetime.fromisoformat(deleted.payload["deleted_at"]) - user.deleted_at) < timedelta(
        milliseconds=1
    )
    assert_envelope(deleted)

    response = APIClient().post(
        f"{API}/auth/restore", {"username": user.username, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content

    [restored] = events("user_restored")
    assert restored.payload["user_id"] == str(user.id)
    assert_envelope(restored)


def test_admin_role_change_emits_role_changed(admin_client, user):
    response = admin_client.patch(f"{API}/users/{user.id}", {"roles": ["user", "admin"]}, format="json")
    assert response.status_code == 200, response.content

    [event] = events("role_changed")
    assert event.payload["user_id"] == str(user.id)
    assert event.payload["roles"] == ["admin", "user"]
    assert event.payload["previous_roles"] == ["user"]
    assert_envelope(event)


def test_admin_deactivation_and_restore_emit(admin_client):
    target = UserFactory()
    admin_client.patch(f"{API}/users/{target.id}", {"is_active": False}, format="json")
    [updated] = events("user_updated")
    assert updated.payload["user_id"] == str(target.id)
    assert updated.payload["is_active"] is False

    assert admin_client.delete(f"{API}/users/{target.id}").status_code == 204
    assert admin_client.post(f"{API}/users/{target.id}/restore").status_code == 200
    assert [e.payload["user_id"] for e in events("user_deleted") + events("user_restored")] == [
        str(target.id)
    ] * 2


def test_emitting_touches_no_broker_and_no_producer(settings, no_producer):
    """The request path never reaches Kafka, even with a broker configured (and down).

    A relay run, even one that failed, would have counted an attempt on the row.
    """
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]

    response = APIClient().post(
        f"{API}/auth/register",
        {"username": "quiet", "email": "quiet@example.com", "password": PASSWORD},
        format="json",
    )

    assert response.status_code == 201
    (event,) = events("new_user")
    assert (event.published_at, event.attempts, event.last_error) == (None, 0, "")


def test_with_a_celery_broker_the_relay_is_queued_once_per_transaction_after_commit(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    from notifications import tasks

    settings.CELERY_TASK_ALWAYS_EAGER = False
    queued = []
    monkeypatch.setattr(tasks.publish_outbox.__class__, "delay", lambda self, *a, **k: queued.append((a, k)))

    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        for index in range(3):
            services.event_emit(name="batch", payload={"i": index})
        assert queued == []  # not before the commit
    for callback in callbacks:
        callback()

    assert queued == [((), {})]
    assert OutboxEvent.objects.filter(key="batch").count() == 3


def test_in_the_embedded_default_emitting_queues_no_relay(settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.event_emit(name="embedded", payload={})
    assert callbacks == []  # the periodic relay picks it up, never the request


def test_event_emit_takes_a_topic_and_serializes_what_json_cannot(settings):
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.now().astimezone().tzinfo)
    some_id = uuid.uuid4()

    event = services.event_emit(name="custom", payload={"when": when, "id": some_id}, topic="elsewhere")

    event.refresh_from_db()
    assert event.topic == "elsewhere"
    assert event.key == "custom"
    assert event.payload["id"] == str(some_id)
    assert datetime.fromisoformat(event.payload["when"]) == when
    assert services.event_emit(name="default", payload={}).topic == settings.KAFKA_TOPIC_DATA
