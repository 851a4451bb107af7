"""The Django admin's doors on notifications, broadcasts and the outbox.

A notification deleted on its admin page or with the bulk action goes through the API's
`notification_delete`, so the owner's unread count, though cached, says so at once. Its
change form is closed (what a user was told stays as told). Broadcasts and the outbox
cannot be deleted at all: the record of what was sent, and events other services still
have to hear of.
"""

from __future__ import annotations

from typing import Any

import pytest

from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD
from notifications import services
from notifications.models import Broadcast, Kind, Notification, OutboxEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]

UNREAD = "/api/v1/notifications/unread-count"
PAGE = "/admin/notifications/notification/"


def tell(user: Any, title: str) -> Notification:
    return services.notification_send(user_id=user.id, kind=Kind.WELCOME, title=title)


def test_a_notification_deleted_on_its_admin_page_leaves_the_unread_count_right(
    auth_client, user, superuser_client
):
    note = tell(user, "hello")
    assert auth_client.get(UNREAD).json() == {"count": 1}  # counted, and cached

    response = superuser_client.post(f"{PAGE}{note.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Notification.objects.exists()
    assert auth_client.get(UNREAD).json() == {"count": 0}
    assert auth_client.get("/api/v1/notifications").json()["results"] == []


def test_notifications_deleted_in_bulk_leave_every_owners_count_right(auth_client, user, superuser_client):
    other = UserFactory(password=PASSWORD)
    notes = [tell(user, "one"), tell(user, "two"), tell(other, "three")]
    kept = tell(user, "kept")
    assert auth_client.get(UNREAD).json() == {"count": 3}

    selected = [str(n.pk) for n in notes]
    confirm = superuser_client.post(PAGE, {"action": "delete_selected", "_selected_action": selected})
    assert b"Are you sure" in confirm.content
    response = superuser_client.post(
        PAGE, {"action": "delete_selected", "_selected_action": selected, "post": "yes"}
    )

    assert response.status_code == 302
    assert list(Notification.objects.all()) == [kept]
    assert auth_client.get(UNREAD).json() == {"count": 1}
    assert services.unread_count(user_id=other.id) == 0


def test_a_notification_is_shown_read_only(superuser_client, user):
    note = tell(user, "as told")
    page = superuser_client.get(f"{PAGE}{note.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content

    response = superuser_client.post(f"{PAGE}{note.pk}/change/", {"user": str(user.pk), "title": "rewritten"})

    assert response.status_code == 403
    note.refresh_from_db()
    assert note.title == "as told"


def test_broadcasts_and_outbox_events_cannot_be_deleted(superuser_client, user):
    services.broadcast_create(title="Hi all", body="", created_by=user.id)
    broadcast = Broadcast.objects.get()
    event = services.event_emit(name="pending", payload={"x": 1})

    for url, pk in (
        ("/admin/notifications/broadcast/", broadcast.pk),
        ("/admin/notifications/outboxevent/", event.pk),
    ):
        assert superuser_client.get(f"{url}{pk}/delete/").status_code == 403
        assert superuser_client.post(f"{url}{pk}/delete/", {"post": "yes"}).status_code == 403
        changelist = superuser_client.get(url)
        assert b'value="delete_selected"' not in changelist.content
        superuser_client.post(
            url, {"action": "delete_selected", "_selected_action": [str(pk)], "post": "yes"}
        )

    assert Broadcast.objects.filter(pk=broadcast.pk).exists()
    assert OutboxEvent.objects.filter(pk=event.pk).exists()
