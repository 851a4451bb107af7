"""The notifications API (API.md → Notifications): list, unread count, read, read-all, delete,
preferences, and the admin's broadcast.

`commit_per_request` runs each request's after-commit work (cache invalidation,
queued tasks, which run in-process without a broker), as a real commit would.
"""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from notifications.models import EMAIL_BY_DEFAULT, Broadcast, Kind, Notification, NotificationPreference

from .helpers import notify_now

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]

URL = "/api/v1/notifications"
ITEM_FIELDS = {"id", "kind", "title", "body", "data", "created_at", "read_at"}


def make(user, count: int = 1, *, kind: str = Kind.SECURITY, title: str = "note") -> list[Notification]:
    return [
        notify_now(user_id=user.id, kind=kind, title=f"{title} {index}", body="body", data={"n": index})
        for index in range(count)
    ]


# --- list ----------------------------------------------------------------------------


def test_list_is_paginated_newest_first_and_has_the_contract_fields(auth_client, user):
    mine = make(user, 3)
    make(UserFactory(), 2, title="not yours")

    response = auth_client.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"next", "previous", "results"}
    assert body["next"] is None
    assert body["previous"] is None
    assert [item["id"] for item in body["results"]] == [str(n.id) for n in reversed(mine)]
    for item in body["results"]:
        assert set(item) == ITEM_FIELDS
        assert item["kind"] == "security"
        assert item["body"] == "body"
        assert item["read_at"] is None
        assert item["created_at"].endswith("Z")
    assert body["results"][0]["data"] == {"n": 2}

    page = auth_client.get(URL, {"page_size": 2}).json()
    assert len(page["results"]) == 2
    assert page["next"]
    second = auth_client.get(page["next"]).json()
    assert [i["id"] for i in page["results"] + second["results"]] == [str(n.id) for n in reversed(mine)]


def test_list_cost_does_not_grow_with_the_page(auth_client, user):
    make(user, 2)
    with CaptureQueriesContext(connection) as few:
        assert auth_client.get(URL).status_code == 200
    make(user, 20)
    with CaptureQueriesContext(connection) as many:
        assert len(auth_client.get(URL, {"page_size": 30}).json()["results"]) == 22
    assert len(many) == len(few)


def test_unread_filter_lists_only_unread(auth_client, user):
    read, unread = make(user, 2)
    assert auth_client.post(f"{URL}/{read.id}/read").status_code == 200

    for value in ("true", "1", "True"):
        ids = [item["id"] for item in auth_client.get(URL, {"unread": value}).json()["results"]]
        assert ids == [str(unread.id)]
    assert len(auth_client.get(URL, {"unread": "false"}).json()["results"]) == 2


def test_notifications_need_a_token(user):
    make(user)
    client = APIClient()
    for method, path in (
        ("get", URL),
        ("get", f"{URL}/unread-count"),
        ("post", f"{URL}/read-all"),
        ("get", f"{URL}/preferences"),
    ):
        response = getattr(client, method)(path)
        assert response.status_code == 401, path
        assert response["Content-Type"].startswith("application/json")


# --- read, read-all, delete ----------------------------------------------------------


def test_read_marks_the_notification_and_is_idempotent(auth_client, user):
    (notification,) = make(user)

    response = auth_client.post(f"{URL}/{notification.id}/read")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == ITEM_FIELDS
    assert body["id"] == str(notification.id)
    assert body["read_at"]
    notification.refresh_from_db()
    assert notification.read_at is not None
    again = auth_client.post(f"{URL}/{notification.id}/read")
    assert again.status_code == 200
    assert again.json()["read_at"] == body["read_at"]


def test_another_users_notification_is_404_on_read_and_delete_and_stays_untouched(auth_client):
    (theirs,) = make(UserFactory())

    for response in (auth_client.post(f"{URL}/{theirs.id}/read"), auth_client.delete(f"{URL}/{theirs.id}")):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert auth_client.post(f"{URL}/{uuid.uuid4()}/read").status_code == 404
    assert auth_client.post(f"{URL}/not-a-uuid/read").status_code == 404
    assert auth_client.delete(f"{URL}/not-a-uuid").status_code == 404


def test_read_all_marks_only_the_callers_notifications(auth_client, user):
    make(user, 3)
    (other,) = make(UserFactory())

    response = auth_client.post(f"{URL}/read-all")

    assert response.status_code == 204
    assert not Notification.objects.filter(user=user, read_at__isnull=True).exists()
    other.refresh_from_db()
    assert other.read_at is None


def test_delete_removes_the_notification(auth_client, user):
    keep, gone = make(user, 2)

    assert auth_client.delete(f"{URL}/{gone.id}").status_code == 204

    assert list(Notification.objects.filter(user=user)) == [keep]
    assert auth_client.delete(f"{URL}/{gone.id}").status_code == 404


# --- unread count ----------------------------------------------------------------------


def test_unread_count_is_cached_warm_and_invalidated_by_every_change(
    auth_client, user, django_assert_num_queries
):
    first, second = make(user, 2)
    count_url = f"{URL}/unread-count"

    response = auth_client.get(count_url)
    assert response.status_code == 200
    assert response.json() == {"count": 2}
    with django_assert_num_queries(0):
        assert auth_client.get(count_url).json() == {"count": 2}

    auth_client.post(f"{URL}/{first.id}/read")
    assert auth_client.get(count_url).json() == {"count": 1}

    make(user)  # a new notification
    assert auth_client.get(count_url).json() == {"count": 2}

    auth_client.delete(f"{URL}/{second.id}")
    assert auth_client.get(count_url).json() == {"count": 1}

    auth_client.post(f"{URL}/read-all")
    assert auth_client.get(count_url).json() == {"count": 0}
    with django_assert_num_queries(0):
        assert auth_client.get(count_url).json() == {"count": 0}


def test_a_count_read_while_a_notification_commits_does_not_stay_cached(user, monkeypatch):
    """Two requests interleave: a poll counts (1), a notification commits and writes the new
    count, then the poll stores its 1. The next polls must not answer 1 for CACHE_TTL (an hour)."""
    from core import read_through
    from notifications import services

    notify_now(user_id=user.id, kind=Kind.SECURITY, title="first")
    original = read_through.safe_call
    raced = []

    count_key = f"notif:unread:{user.id}"

    def interleaved(name, func, *args, **kwargs):
        writes_count = name in {"add", "set"} and args and args[0] == count_key
        if writes_count and not raced:  # between the poll's COUNT and its cache write
            raced.append(True)
            notify_now(user_id=user.id, kind=Kind.SECURITY, title="committed meanwhile")
        return original(name, func, *args, **kwargs)

    monkeypatch.setattr(read_through, "safe_call", interleaved)
    cache.delete(count_key)  # the count written after "first" has expired: the poll counts

    assert services.unread_count(user_id=user.id) == 1  # counted before the other commit: fine
    assert raced
    assert services.unread_count(user_id=user.id) == 2, "a stale unread count stays cached"


def test_unread_count_is_per_user(auth_client, user):
    make(UserFactory(), 3)
    make(user, 1)
    assert auth_client.get(f"{URL}/unread-count").json() == {"count": 1}


# --- preferences -------------------------------------------------------------------------


def test_preferences_list_every_kind_with_its_default(auth_client):
    response = auth_client.get(f"{URL}/preferences")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(Kind.values)
    assert set(body) >= {"welcome", "security", "role_request", "processing", "broadcast"}
    for kind, choice in body.items():
        assert choice == {"email": EMAIL_BY_DEFAULT[Kind(kind)]}
    assert body["security"] == {"email": True}
    assert body["processing"] == {"email": False}


def test_patch_preferences_is_persisted_and_answers_every_kind(auth_client, user):
    response = auth_client.patch(
        f"{URL}/preferences", {"processing": {"email": True}, "broadcast": {"email": False}}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(Kind.values)
    assert body["processing"] == {"email": True}
    assert body["broadcast"] == {"email": False}
    assert body["security"] == {"email": True}
    assert dict(NotificationPreference.objects.filter(user=user).values_list("kind", "email")) == {
        "processing": True,
        "broadcast": False,
    }
    assert auth_client.get(f"{URL}/preferences").json() == body

    auth_client.patch(f"{URL}/preferences", {"processing": {"email": False}}, format="json")
    assert auth_client.get(f"{URL}/preferences").json()["processing"] == {"email": False}
    assert NotificationPreference.objects.filter(user=user).count() == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"no_such_kind": {"email": True}}, "no_such_kind"),
        ({"security": {"email": "maybe"}}, "security"),
        ({"security": {}}, "security"),
        ({"security": True}, "security"),
        ({"processing": {"email": True}, "bogus": {"email": True}}, "bogus"),
    ],
)
def test_patch_preferences_refuses_bad_input_and_changes_nothing(auth_client, user, payload, field):
    response = auth_client.patch(f"{URL}/preferences", payload, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not NotificationPreference.objects.filter(user=user).exists()


def test_patch_preferences_refuses_a_non_object(auth_client):
    response = auth_client.patch(f"{URL}/preferences", [1, 2], format="json")
    assert response.status_code == 400


# --- broadcast -------------------------------------------------------------------------


def test_broadcast_is_for_admins_only(auth_client, user):
    response = auth_client.post(f"{URL}/broadcast", {"title": "hi"}, format="json")
    assert response.status_code == 403
    assert APIClient().post(f"{URL}/broadcast", {"title": "hi"}, format="json").status_code == 401
    assert not Broadcast.objects.exists()
    assert not Notification.objects.filter(kind=Kind.BROADCAST).exists()


def test_broadcast_by_role_reaches_that_role_only(admin_client, admin_user, user):
    other_admin = UserFactory(roles=["user", "admin"])

    response = admin_client.post(
        f"{URL}/broadcast", {"title": "Maintenance", "body": "Tonight.", "role": "admin"}, format="json"
    )

    assert response.status_code == 202
    body = response.json()
    assert body == {"id": body["id"], "status": "queued"}
    broadcast = Broadcast.objects.get(id=body["id"])
    assert broadcast.role == "admin"
    assert broadcast.created_by == admin_user
    notified = set(Notification.objects.filter(kind=Kind.BROADCAST).values_list("user_id", flat=True))
    assert notified == {admin_user.id, other_admin.id}
    notification = Notification.objects.filter(user=admin_user).get()
    assert (notification.title, notification.body) == ("Maintenance", "Tonight.")
    assert notification.data == {"broadcast_id": body["id"]}
    broadcast.refresh_from_db()
    assert broadcast.recipients == 2
    assert broadcast.finished_at is not None


def test_broadcast_by_user_ids_reaches_those_users_only(admin_client, user):
    chosen = UserFactory()
    UserFactory()

    response = admin_client.post(
        f"{URL}/broadcast",
        {"title": "Just you two", "user_ids": [str(user.id), str(chosen.id)]},
        format="json",
    )

    assert response.status_code == 202
    notified = set(Notification.objects.filter(kind=Kind.BROADCAST).values_list("user_id", flat=True))
    assert notified == {user.id, chosen.id}


@pytest.mark.parametrize(
    "payload",
    [
        {"title": "x", "role": "no-such-role"},
        {"body": "no title"},
        {"title": ""},
        {"title": "x", "user_ids": ["not-a-uuid"]},
    ],
)
def test_broadcast_refuses_bad_input(admin_client, payload):
    response = admin_client.post(f"{URL}/broadcast", payload, format="json")

    assert response.status_code == 400
    assert not Broadcast.objects.exists()
    assert not Notification.objects.filter(kind=Kind.BROADCAST).exists()


def test_broadcast_to_an_unknown_role_says_so(admin_client):
    response = admin_client.post(f"{URL}/broadcast", {"title": "x", "role": "no-such-role"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_role"
