"""Chat sessions: CRUD, isolation, the per-user limit and its rotation, activity order."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD, bearer
from profiles.models import CHAT_METADATA_MAX_BYTES, ChatSession
from testing.processes import environment, last_json_line, python
from testing.races import run_at_once

SESSIONS = "/api/v1/chat-sessions"
FIELDS = {"id", "title", "external_id", "metadata", "created_at", "updated_at", "last_activity_at"}

pytestmark = pytest.mark.django_db


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def create(client: APIClient, external_id: str, **extra: Any) -> dict[str, Any]:
    response = client.post(SESSIONS, {"external_id": external_id, **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def listed(client: APIClient, **params: Any) -> list[str]:
    return [s["external_id"] for s in client.get(SESSIONS, params).json()["results"]]


# --- create, read, update, delete ---------------------------------------------------------------


def test_create_answers_the_session(auth_client, user):
    body = create(auth_client, "agent-1", title="Resume help", metadata={"model": "gpt-4.1", "tags": ["cv"]})

    assert set(body) == FIELDS
    assert (body["external_id"], body["title"], body["metadata"]) == (
        "agent-1",
        "Resume help",
        {"model": "gpt-4.1", "tags": ["cv"]},
    )
    assert body["last_activity_at"] == body["created_at"]
    row = ChatSession.objects.get(id=body["id"])
    assert (row.user_id, row.external_id) == (user.id, "agent-1")
    assert auth_client.get(f"{SESSIONS}/{body['id']}").json() == body


def test_the_list_is_paginated_most_recently_active_first(auth_client):
    for name in ["a", "b", "c"]:
        create(auth_client, name)
    first = ChatSession.objects.get(external_id="a")
    auth_client.patch(f"{SESSIONS}/{first.id}", {"touch": True}, format="json")

    page = auth_client.get(SESSIONS, {"page_size": 2}).json()

    assert [s["external_id"] for s in page["results"]] == ["a", "c"]
    assert page["previous"] is None
    assert page["next"]
    rest = auth_client.get(page["next"]).json()
    assert [s["external_id"] for s in rest["results"]] == ["b"]


def test_external_id_is_unique_per_user(auth_client, admin_client):
    create(auth_client, "same")

    again = auth_client.post(SESSIONS, {"external_id": "same"}, format="json")

    assert again.status_code == 400
    assert "external_id" in again.json()
    create(admin_client, "same")  # another user's sessions are theirs


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "external_id"),
        ({"external_id": ""}, "external_id"),
        ({"external_id": "x" * 256}, "external_id"),
        ({"external_id": "a\x00b"}, "external_id"),
        ({"external_id": "x", "title": "t" * 256}, "title"),
        ({"external_id": "x", "metadata": ["not", "an", "object"]}, "metadata"),
        ({"external_id": "x", "metadata": "text"}, "metadata"),
        ({"external_id": "x", "metadata": {"k": "v" * CHAT_METADATA_MAX_BYTES}}, "metadata"),
        ({"external_id": "x", "metadata": {"nul": "a\x00b"}}, "metadata"),
        ({"external_id": "x", "metadata": {"a\x00": 1}}, "metadata"),
        ({"external_id": "x", "metadata": nested(33)}, "metadata"),
        # Deep, yet leaving the request stack (middleware, DRF) room below the recursive JSON parser.
        ({"external_id": "x", "metadata": nested(800)}, "metadata"),
    ],
)
def test_invalid_sessions_are_refused(auth_client, body, field):
    response = auth_client.post(SESSIONS, body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not ChatSession.objects.exists()


def test_metadata_at_the_size_limit_is_accepted(auth_client):
    filler = "v" * (CHAT_METADATA_MAX_BYTES - len('{"k":""}'))

    assert (
        auth_client.post(SESSIONS, {"external_id": "x", "metadata": {"k": filler}}, format="json").status_code
        == 201
    )


def test_metadata_nested_to_the_limit_is_accepted(auth_client):
    response = auth_client.post(SESSIONS, {"external_id": "x", "metadata": nested(32)}, format="json")

    assert response.status_code == 201


def test_patch_updates_title_and_metadata(auth_client):
    session = create(auth_client, "s", title="old", metadata={"a": 1})

    response = auth_client.patch(
        f"{SESSIONS}/{session['id']}", {"title": "new", "metadata": {"b": 2}}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["title"], response.json()["metadata"]) == ("new", {"b": 2})
    assert response.json()["last_activity_at"] == session["last_activity_at"]  # an edit is not activity
    row = ChatSession.objects.get(id=session["id"])
    assert (row.title, row.metadata) == ("new", {"b": 2})


def test_touch_moves_a_session_to_the_front(auth_client):
    oldest = create(auth_client, "oldest")
    create(auth_client, "newer")

    response = auth_client.patch(f"{SESSIONS}/{oldest['id']}", {"touch": True}, format="json")

    assert response.status_code == 200
    assert response.json()["last_activity_at"] > oldest["last_activity_at"]
    assert listed(auth_client) == ["oldest", "newer"]


def test_an_explicit_last_activity_moves_it_forward_never_back(auth_client):
    session = create(auth_client, "s")
    url = f"{SESSIONS}/{session['id']}"
    stored = ChatSession.objects.get(id=session["id"]).last_activity_at

    earlier = auth_client.patch(
        url, {"last_activity_at": (stored - timedelta(hours=1)).isoformat()}, format="json"
    )
    assert earlier.status_code == 200
    assert ChatSession.objects.get(id=session["id"]).last_activity_at == stored

    later = stored + timedelta(seconds=30)
    assert auth_client.patch(url, {"last_activity_at": later.isoformat()}, format="json").status_code == 200
    assert ChatSession.objects.get(id=session["id"]).last_activity_at == later

    # touch after an explicit time in the (near) future does not move it back either
    assert auth_client.patch(url, {"touch": True}, format="json").status_code == 200
    assert ChatSession.objects.get(id=session["id"]).last_activity_at >= later


def test_last_activity_in_the_future_is_refused(auth_client):
    session = create(auth_client, "s")
    future = (timezone.now() + timedelta(days=1)).isoformat()

    response = auth_client.patch(f"{SESSIONS}/{session['id']}", {"last_activity_at": future}, format="json")

    assert response.status_code == 400
    assert "last_activity_at" in response.json()


def test_delete_removes_the_session(auth_client):
    session = create(auth_client, "s")

    assert auth_client.delete(f"{SESSIONS}/{session['id']}").status_code == 204
    assert not ChatSession.objects.exists()
    assert auth_client.get(f"{SESSIONS}/{session['id']}").status_code == 404


def test_another_users_session_is_a_404_and_stays_untouched(auth_client, admin_client):
    theirs = create(admin_client, "theirs", title="private")
    url = f"{SESSIONS}/{theirs['id']}"

    assert auth_client.get(url).status_code == 404
    assert auth_client.patch(url, {"title": "mine now"}, format="json").status_code == 404
    assert auth_client.delete(url).status_code == 404
    assert auth_client.get(SESSIONS).json()["results"] == []
    assert ChatSession.objects.get(id=theirs["id"]).title == "private"


def test_a_malformed_id_is_a_404(auth_client):
    assert auth_client.get(f"{SESSIONS}/not-a-uuid").status_code == 404


def test_sessions_need_a_token(api_client):
    assert api_client.get(SESSIONS).status_code == 401
    assert api_client.post(SESSIONS, {"external_id": "x"}, format="json").status_code == 401


# --- the limit -------------------------------------------------------------------------------------


def test_creating_one_more_than_the_limit_deletes_the_least_recently_active(auth_client, settings):
    settings.MAX_USER_SESSIONS = 3
    sessions = [create(auth_client, name) for name in ["a", "b", "c"]]
    # "a" was used last, so "b" is now the least recently active
    auth_client.patch(f"{SESSIONS}/{sessions[0]['id']}", {"touch": True}, format="json")

    create(auth_client, "d")

    assert listed(auth_client) == ["d", "a", "c"]
    assert ChatSession.objects.count() == 3


def test_the_default_limit_is_ten(auth_client):
    for index in range(12):
        create(auth_client, f"s{index}")

    assert listed(auth_client) == [f"s{i}" for i in range(11, 1, -1)]


def test_the_limit_is_per_user(auth_client, admin_client, settings):
    settings.MAX_USER_SESSIONS = 2
    create(admin_client, "theirs")
    for name in ["a", "b", "c"]:
        create(auth_client, name)

    assert listed(admin_client) == ["theirs"]
    assert listed(auth_client) == ["c", "b"]


def test_the_new_session_is_kept_even_when_the_others_are_more_recent(auth_client, settings):
    settings.MAX_USER_SESSIONS = 2
    for name in ["a", "b"]:
        session = create(auth_client, name)
        later = (timezone.now() + timedelta(minutes=4)).isoformat()
        auth_client.patch(f"{SESSIONS}/{session['id']}", {"last_activity_at": later}, format="json")

    create(auth_client, "c")

    assert set(listed(auth_client)) == {"c", "b"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the embedded default has its own race test below"
)
def test_creations_at_once_on_postgresql_never_leave_one_too_many(settings):
    settings.MAX_USER_SESSIONS = 10
    for round_ in range(3):
        user = UserFactory(password=PASSWORD)
        login = APIClient().post(
            "/api/v1/auth/login", {"username": user.username, "password": PASSWORD}, format="json"
        )
        client = bearer(login.json()["access"])
        for index in range(10):
            create(client, f"old-{index}")

        def attempt(name: str, access: str = login.json()["access"]) -> int:
            return bearer(access).post(SESSIONS, {"external_id": name}, format="json").status_code

        statuses = run_at_once([lambda i=i, r=round_: attempt(f"new-{r}-{i}") for i in range(6)])

        assert statuses == [201] * 6, statuses
        left = set(ChatSession.objects.filter(user=user).values_list("external_id", flat=True))
        assert len(left) == 10
        assert {f"new-{round_}-{i}" for i in range(6)} <= left


@pytest.mark.slow
def test_creations_at_once_on_the_embedded_default_never_leave_one_too_many(tmp_path):
    """The embedded default (a SQLite file, one process, threads), in a child process of its own."""
    env = environment("DATABASE_URL", "REDIS_URL", "MAX_USER_SESSIONS")

    result = python("-m", "profiles.tests.embedded_race", str(tmp_path), "chat", "8", env=env, timeout=180)

    assert result.returncode == 0, result.stderr
    outcome = last_json_line(result.stdout)
    assert outcome["statuses"] == [201] * 8, result.stderr
    assert outcome["limit"] == 10
    assert len(outcome["left"]) == 10
    assert {f"new-{i}" for i in range(8)} <= set(outcome["left"])
    assert {"old-8", "old-9"} <= set(outcome["left"])  # the two most recently active old ones stay
