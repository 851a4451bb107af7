"""What the three kinds of profile data share: query counts, export, purge, admin, schema."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from accounts.services import users_purge_deleted
from profiles.models import ChatSession, LLMSetting, QuizResult

from .query_counts import expected_queries

SETTINGS = "/api/v1/profile/llm-settings"
SESSIONS = "/api/v1/chat-sessions"
RESULTS = "/api/v1/quiz-results"

pytestmark = pytest.mark.django_db


def fill(client: Any, sessions: int = 3, results: int = 3) -> None:
    body = {
        "agent": {
            "provider": "anthropic",
            "model": "claude-haiku-4-5",
            "temperature": 0.1,
            "max_tokens": 900,
        },
        "rag": {"provider": "ollama", "model": "qwen2.5:7b", "temperature": 0.0, "max_tokens": 512},
    }
    assert client.patch(SETTINGS, body, format="json").status_code == 200
    for index in range(sessions):
        created = client.post(
            SESSIONS, {"external_id": f"chat-{index}", "metadata": {"i": index}}, format="json"
        )
        assert created.status_code == 201
    for index in range(results):
        body = {
            "quiz_id": f"quiz-{index}",
            "topic": "sql",
            "score": index % 5,
            "max_score": 4,
            "answers": [index],
        }
        assert client.post(RESULTS, body, format="json").status_code == 201


# --- query counts of the lists: pinned, whatever the page size -----------------------------------


@pytest.mark.parametrize("path", [SESSIONS, RESULTS, f"{RESULTS}?topic=sql"])
def test_list_cost_is_pinned_and_does_not_grow_with_the_page_size(auth_client, settings, path):
    settings.MAX_USER_SESSIONS = 60
    fill(auth_client, sessions=50, results=50)
    auth_client.get(path)  # the caller's auth entries are warm from here on
    pinned = expected_queries(f"GET {path.split('?')[0]}")

    counts = {}
    for size in (1, 10, 50):
        separator = "&" if "?" in path else "?"
        with CaptureQueriesContext(connection) as ctx:
            response = auth_client.get(f"{path}{separator}page_size={size}")
        assert len(response.json()["results"]) == size
        counts[size] = len(ctx.captured_queries)

    assert counts == {1: pinned, 10: pinned, 50: pinned}


# --- export and purge ------------------------------------------------------------------------------


def test_the_export_includes_all_three(auth_client, admin_client):
    fill(auth_client)
    fill(admin_client, sessions=1, results=1)  # someone else's: not in the caller's export

    export = auth_client.get("/api/v1/users/me/export").json()

    assert [(s["purpose"], s["model"]) for s in export["llm_settings"]] == [
        ("agent", "claude-haiku-4-5"),
        ("rag", "qwen2.5:7b"),
    ]
    assert sorted(s["external_id"] for s in export["chat_sessions"]) == ["chat-0", "chat-1", "chat-2"]
    assert {s["metadata"]["i"] for s in export["chat_sessions"]} == {0, 1, 2}
    assert sorted((r["quiz_id"], r["percent"], r["answers"]) for r in export["quiz_results"]) == [
        ("quiz-0", 0.0, [0]),
        ("quiz-1", 25.0, [1]),
        ("quiz-2", 50.0, [2]),
    ]
    # the account's own sections are still there
    assert "profile" in export
    assert "sessions" in export


def test_the_account_purge_removes_all_three(auth_client, admin_client, user, admin_user, settings):
    fill(auth_client)
    fill(admin_client, sessions=1, results=1)
    User.objects.filter(id=user.id).update(
        deleted_at=timezone.now() - timedelta(days=settings.ACCOUNT_RESTORE_DAYS + 1)
    )

    assert users_purge_deleted() == 1

    for model in (LLMSetting, ChatSession, QuizResult):
        assert not model.objects.filter(user_id=user.id).exists(), model
        assert model.objects.filter(user_id=admin_user.id).exists(), model  # the others' rows stay


# --- admin -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "queries"),
    [
        (
            "/admin/profiles/llmsetting/",
            ["", "?q={username}", "?purpose__exact=agent", "?provider__exact=anthropic"],
        ),
        (
            "/admin/profiles/chatsession/",
            ["", "?q={username}", "?q=chat-1", "?last_activity_at__year={year}"],
        ),
        (
            "/admin/profiles/quizresult/",
            ["", "?q={username}", "?topic__exact=sql", "?q=quiz-2", "?completed_at__year={year}"],
        ),
    ],
)
def test_each_model_has_a_list_with_search_and_filters(staff_client, auth_client, user, url, queries):
    fill(auth_client)

    for query in queries:
        response = staff_client.get(url + query.format(username=user.username, year=timezone.now().year))
        assert response.status_code == 200, query
        assert user.username in response.content.decode(), query


def test_search_finds_only_the_matching_user(staff_client, auth_client, admin_client, user):
    fill(auth_client)
    fill(admin_client, sessions=1, results=1)

    page = staff_client.get(f"/admin/profiles/quizresult/?q={user.username}").content.decode()

    assert page.count("quiz-2") == 1
    assert (
        staff_client.get("/admin/profiles/chatsession/?q=nobody-has-this").content.decode().count("chat-0")
        == 0
    )


def test_the_users_page_shows_their_settings_sessions_and_results(staff_client, auth_client, user):
    fill(auth_client)

    page = staff_client.get(f"/admin/accounts/user/{user.id}/change/").content.decode()

    for text in ("LLM settings", "claude-haiku-4-5", "qwen2.5:7b", "chat-0", "chat-2", "quiz-0", "quiz-2"):
        assert text in page, text


def test_the_users_page_still_saves_with_profile_data_present(staff_client, auth_client, user):
    fill(auth_client)
    form = {
        "username": user.username,
        "email": user.email,
        "full_name": "Renamed",
        "groups": [],
        "is_active": "on",
    }
    for prefix in ("auth_sessions", "social_auth"):  # the inlines that take part in a save
        form.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})

    response = staff_client.post(f"/admin/accounts/user/{user.id}/change/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(id=user.id).full_name == "Renamed"
    assert ChatSession.objects.filter(user=user).count() == 3


def test_the_admin_cannot_edit_settings_behind_the_services_back(staff_client, auth_client, user):
    fill(auth_client)
    setting = LLMSetting.objects.filter(user=user).first()

    assert staff_client.get("/admin/profiles/llmsetting/add/").status_code == 403
    response = staff_client.post(
        f"/admin/profiles/llmsetting/{setting.pk}/change/", {"model": "gpt-4o", "purpose": "agent"}
    )
    assert response.status_code == 403
    assert LLMSetting.objects.get(pk=setting.pk).model == setting.model


# --- schema ----------------------------------------------------------------------------------------


def test_the_paths_are_in_the_schema(client):
    document = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    expected = {
        "/api/v1/profile/llm-settings": {"get", "put", "patch"},
        "/api/v1/llm/catalog": {"get"},
        "/api/v1/chat-sessions": {"get", "post"},
        "/api/v1/chat-sessions/{id}": {"get", "patch", "delete"},
        "/api/v1/quiz-results": {"get", "post"},
        "/api/v1/quiz-results/{id}": {"get", "delete"},
        "/api/v1/quiz-results/stats": {"get"},
    }
    for path, methods in expected.items():
        assert path in document["paths"], path
        assert set(document["paths"][path]) - {"parameters"} == methods, path
