"""Sessions: the list, revoking one, the per-user limit and the absolute lifetime."""

from __future__ import annotations

import uuid
from datetime import timedelta

import jwt
import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuthSession
from accounts.tests.factories import UserFactory
from accounts.tests.support import bearer

SESSIONS = "/api/v1/auth/sessions"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/users/me"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def refresh(token: str):
    return APIClient().post(REFRESH, {"refresh": token}, format="json")


def alive(tokens: dict) -> bool:
    return bearer(tokens["access"]).get(ME).status_code == 200


# --- the list ------------------------------------------------------------------


def test_sessions_list_shape_and_the_current_one(user, login):
    first = login(user, HTTP_USER_AGENT="phone/1.0")
    second = login(user, HTTP_USER_AGENT="laptop/2.0")

    response = bearer(second["access"]).get(SESSIONS)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert body["next"] is None
    assert body["previous"] is None
    results = body["results"]
    assert {r["id"] for r in results} == {first["session_id"], second["session_id"]}
    for row in results:
        assert set(row) == {"id", "created_at", "last_used_at", "ip", "user_agent", "current"}
        assert row["ip"] == "127.0.0.1"
        assert row["created_at"].endswith("Z")
    assert [r["id"] for r in results if r["current"]] == [second["session_id"]]
    agents = {r["id"]: r["user_agent"] for r in results}
    assert agents == {first["session_id"]: "phone/1.0", second["session_id"]: "laptop/2.0"}


def test_sessions_list_is_paginated(user, login):
    tokens = [login(user) for _ in range(3)]
    client = bearer(tokens[-1]["access"])

    page = client.get(SESSIONS, {"page_size": 2}).json()

    assert len(page["results"]) == 2
    assert page["next"]
    rest = client.get(page["next"]).json()
    assert len(rest["results"]) == 1
    assert rest["next"] is None
    assert rest["previous"]
    seen = {r["id"] for r in page["results"] + rest["results"]}
    assert seen == {t["session_id"] for t in tokens}
    assert sum(r["current"] for r in page["results"] + rest["results"]) == 1


def test_sessions_list_shows_only_the_callers_active_sessions(user, login, admin_user):
    ended = login(user)
    mine = login(user)
    login(admin_user)
    assert bearer(ended["access"]).post("/api/v1/auth/logout", {}, format="json").status_code == 204

    results = bearer(mine["access"]).get(SESSIONS).json()["results"]

    assert [r["id"] for r in results] == [mine["session_id"]]
    assert results[0]["current"] is True


def test_sessions_list_needs_a_token():
    response = APIClient().get(SESSIONS)

    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code"}


def test_sessions_list_cost_does_not_grow_with_the_sessions(user, login):
    def cost(client: APIClient) -> int:
        client.get(SESSIONS)  # warm the cache
        with CaptureQueriesContext(connection) as queries:
            assert client.get(SESSIONS).status_code == 200
        return len(queries.captured_queries)

    cost_few = cost(bearer(login(user)["access"]))
    for _ in range(6):
        login(user)
    many = bearer(login(user)["access"])

    assert len(many.get(SESSIONS).json()["results"]) == 8
    assert cost(many) == cost_few


# --- revoking one ------------------------------------------------------------------


def test_delete_a_session_revokes_it_at_once(user, login):
    other = login(user)
    mine = login(user)
    assert alive(other)
    client = bearer(mine["access"])

    response = client.delete(f"{SESSIONS}/{other['session_id']}")

    assert response.status_code == 204
    assert not alive(other)
    assert refresh(other["refresh"]).status_code == 401
    assert AuthSession.objects.get(id=other["session_id"]).revoked_at is not None
    assert client.get(ME).status_code == 200
    assert [r["id"] for r in client.get(SESSIONS).json()["results"]] == [mine["session_id"]]


def test_delete_the_current_session_logs_out(auth_client):
    response = auth_client.delete(f"{SESSIONS}/{auth_client.tokens['session_id']}")

    assert response.status_code == 204
    assert auth_client.get(ME).status_code == 401
    assert refresh(auth_client.tokens["refresh"]).status_code == 401


def test_delete_another_users_session_is_404_and_leaves_it_alive(auth_client, admin_user, login):
    theirs = login(admin_user)

    response = auth_client.delete(f"{SESSIONS}/{theirs['session_id']}")

    assert response.status_code == 404
    assert set(response.json()) == {"detail", "code"}
    assert alive(theirs)
    assert AuthSession.objects.get(id=theirs["session_id"]).revoked_at is None
    # Same answer as for a session that does not exist at all.
    unknown = auth_client.delete(f"{SESSIONS}/{uuid.uuid4()}")
    assert (unknown.status_code, unknown.json()) == (404, response.json())


def test_delete_a_session_with_a_malformed_id_is_404_json(auth_client):
    response = auth_client.delete(f"{SESSIONS}/not-a-uuid")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert set(response.json()) == {"detail", "code"}


# --- the per-user limit ----------------------------------------------------------


def test_the_eleventh_login_revokes_the_least_recently_used_session(user, login, settings):
    assert settings.MAX_ACTIVE_SESSIONS == 10
    sessions = [login(user) for _ in range(10)]
    assert all(alive(s) for s in sessions)

    newest = login(user)

    assert not alive(sessions[0])
    assert refresh(sessions[0]["refresh"]).status_code == 401
    assert all(alive(s) for s in sessions[1:])
    assert alive(newest)
    assert AuthSession.objects.active().filter(user=user).count() == 10
    assert AuthSession.objects.get(id=sessions[0]["session_id"]).revoked_at is not None
    listed = bearer(newest["access"]).get(SESSIONS, {"page_size": 100}).json()["results"]
    assert len(listed) == 10
    assert sessions[0]["session_id"] not in {r["id"] for r in listed}


def test_the_session_limit_follows_the_setting_and_evicts_by_last_use(user, login, settings):
    settings.MAX_ACTIVE_SESSIONS = 2
    first = login(user)
    second = login(user)
    # Using the first session (a refresh) makes the second the least recently used.
    AuthSession.objects.filter(id__in=[first["session_id"], second["session_id"]]).update(
        last_used_at=timezone.now() - timedelta(minutes=5)
    )
    first = {**refresh(first["refresh"]).json(), "session_id": first["session_id"]}

    third = login(user)

    assert alive(first)
    assert alive(third)
    assert not alive(second)
    assert refresh(second["refresh"]).status_code == 401
    assert AuthSession.objects.active().filter(user=user).count() == 2


def test_the_session_limit_is_per_user(user, admin_user, login, settings):
    settings.MAX_ACTIVE_SESSIONS = 2
    theirs = [login(admin_user) for _ in range(2)]

    for _ in range(3):
        login(user)

    assert all(alive(s) for s in theirs)
    assert AuthSession.objects.active().filter(user=user).count() == 2
    assert AuthSession.objects.active().filter(user=admin_user).count() == 2


# --- the absolute lifetime ---------------------------------------------------------


def test_a_session_past_its_max_age_is_over(auth_client):
    assert auth_client.get(ME).status_code == 200
    AuthSession.objects.filter(id=auth_client.tokens["session_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    cache.clear()

    me = auth_client.get(ME)

    assert me.status_code == 401
    assert set(me.json()) == {"detail", "code"}
    assert refresh(auth_client.tokens["refresh"]).status_code == 401
    verify = APIClient().post("/api/v1/auth/verify", {"token": auth_client.tokens["access"]}, format="json")
    assert verify.status_code == 401


def test_tokens_never_outlive_the_session(user, login, settings):
    settings.SESSION_MAX_AGE_DAYS = 1  # shorter than REFRESH_TOKEN_EXPIRE_DAYS
    assert settings.REFRESH_TOKEN_EXPIRE_DAYS > 1
    tokens = login(user)
    session = AuthSession.objects.get(id=tokens["session_id"])
    end = session.expires_at.timestamp()
    assert timedelta(hours=23) < session.expires_at - timezone.now() <= timedelta(days=1)

    assert claims(tokens["refresh"])["exp"] <= end
    assert claims(tokens["refresh"])["exp"] > end - 5
    assert claims(tokens["access"])["exp"] <= end

    rotated = refresh(tokens["refresh"]).json()
    assert claims(rotated["refresh"])["exp"] <= end
    assert claims(rotated["access"])["exp"] <= end


def test_a_session_near_its_end_gets_tokens_cut_to_its_end(auth_client, settings):
    end = timezone.now() + timedelta(seconds=120)
    AuthSession.objects.filter(id=auth_client.tokens["session_id"]).update(expires_at=end)

    response = refresh(auth_client.tokens["refresh"])

    assert response.status_code == 200, response.content
    body = response.json()
    assert claims(body["access"])["exp"] <= end.timestamp()
    assert claims(body["refresh"])["exp"] <= end.timestamp()
    assert 0 < body["expires_in"] <= 120
    assert body["expires_in"] < settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60


def test_a_new_user_has_no_sessions_of_anyone_else(login):
    """A fresh account's list is its own single session, whatever others exist."""
    for _ in range(2):
        login(UserFactory())
    newcomer = UserFactory()

    results = bearer(login(newcomer)["access"]).get(SESSIONS).json()["results"]

    assert len(results) == 1
    assert results[0]["current"] is True
