"""The Django admin for notifications: the "Send broadcast" form (the same service as the API),
broadcasts shown read-only, and the outbox read-only."""

from __future__ import annotations

import pytest

from accounts.tests.factories import UserFactory
from notifications import services
from notifications.models import Broadcast, Kind, Notification, OutboxEvent

pytestmark = pytest.mark.django_db

BROADCAST_URL = "/admin/notifications/notification/broadcast/"


@pytest.fixture
def staff_client(client, admin_user):
    """An administrator by role (the `admin` role brings the Django admin), not a superuser."""
    assert not admin_user.is_superuser
    client.force_login(admin_user)
    return client


def test_the_notifications_page_links_to_send_broadcast(staff_client, user):
    services.notification_send(user_id=user.id, kind=Kind.SECURITY, title="shown in the list")

    response = staff_client.get("/admin/notifications/notification/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Send broadcast" in page
    assert f'href="{BROADCAST_URL}"' in page
    assert "shown in the list" in page
    for query in ("?kind__exact=security", "?read_at__isempty=1", f"?q={user.username}"):
        assert staff_client.get("/admin/notifications/notification/" + query).status_code == 200


def test_the_broadcast_form_is_shown(staff_client):
    response = staff_client.get(BROADCAST_URL)

    assert response.status_code == 200
    page = response.content.decode()
    for field in ('name="title"', 'name="body"', 'name="role"', 'name="user_ids"'):
        assert field in page
    assert '<option value="admin">' in page


def test_sending_a_broadcast_to_a_role_from_the_admin(
    staff_client, admin_user, django_capture_on_commit_callbacks
):
    admins = [admin_user, UserFactory(roles=["user", "admin"])]
    UserFactory()

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            BROADCAST_URL, {"title": "From the admin", "body": "Hi", "role": "admin"}
        )

    assert response.status_code == 302
    assert response["Location"] == "/admin/notifications/broadcast/"
    broadcast = Broadcast.objects.get()
    assert (broadcast.title, broadcast.role, broadcast.created_by) == ("From the admin", "admin", admin_user)
    notified = set(Notification.objects.filter(kind=Kind.BROADCAST).values_list("user_id", flat=True))
    assert notified == {u.id for u in admins}
    broadcast.refresh_from_db()
    assert broadcast.recipients == 2
    assert broadcast.finished_at is not None
    assert staff_client.get("/admin/notifications/broadcast/").status_code == 200
    assert staff_client.get(f"/admin/notifications/broadcast/{broadcast.id}/change/").status_code == 200


def test_sending_a_broadcast_to_user_ids_from_the_admin(staff_client, django_capture_on_commit_callbacks):
    chosen = UserFactory.create_batch(2)
    UserFactory()

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            BROADCAST_URL, {"title": "Two of you", "user_ids": f"{chosen[0].id},\n{chosen[1].id}\n"}
        )

    assert response.status_code == 302
    notified = set(Notification.objects.filter(kind=Kind.BROADCAST).values_list("user_id", flat=True))
    assert notified == {u.id for u in chosen}


def test_the_broadcast_form_refuses_bad_input(staff_client):
    for data in (
        {"title": ""},
        {"title": "x", "user_ids": "not-a-uuid"},
        {"title": "x", "role": "no-such-role"},
    ):
        response = staff_client.post(BROADCAST_URL, data)
        assert response.status_code == 200, data  # the form again, with its errors
        assert b"errorlist" in response.content
    assert not Broadcast.objects.exists()


def test_the_broadcast_form_is_for_staff_only(client, user):
    client.force_login(user)
    response = client.get(BROADCAST_URL)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    client.post(BROADCAST_URL, {"title": "sneaky"})
    assert not Broadcast.objects.exists()


def test_broadcasts_cannot_be_added_or_changed_in_the_admin(staff_client):
    assert staff_client.get("/admin/notifications/broadcast/add/").status_code == 403


def test_the_outbox_is_read_only_in_the_admin(staff_client):
    event = services.event_emit(name="shown", payload={"x": 1})

    assert staff_client.get("/admin/notifications/outboxevent/").status_code == 200
    assert staff_client.get("/admin/notifications/outboxevent/?q=shown").status_code == 200
    assert staff_client.get("/admin/notifications/outboxevent/add/").status_code == 403
    change_url = f"/admin/notifications/outboxevent/{event.id}/change/"
    page = staff_client.get(change_url)
    assert page.status_code == 200  # viewable
    assert b'name="_save"' not in page.content
    response = staff_client.post(change_url, {"topic": "tampered", "key": "tampered", "payload": "{}"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.topic != "tampered"
    assert OutboxEvent.objects.count() == 1
