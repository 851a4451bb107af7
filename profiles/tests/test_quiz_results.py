"""Quiz results: create, derived percent, score rules, topic filter, isolation, stats in one query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from profiles.models import QUIZ_ANSWERS_MAX_BYTES, QuizResult

from .query_counts import expected_queries

RESULTS = "/api/v1/quiz-results"
STATS = "/api/v1/quiz-results/stats"
FIELDS = {"id", "quiz_id", "topic", "score", "max_score", "percent", "answers", "completed_at"}

pytestmark = pytest.mark.django_db


def post(client: Any, **fields: Any) -> dict[str, Any]:
    body = {"quiz_id": "q1", "topic": "python", "score": 7, "max_score": 10, **fields}
    response = client.post(RESULTS, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_answers_the_result_with_its_percent(auth_client, user):
    when = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)

    body = post(
        auth_client, score=3, max_score=8, answers={"1": "b", "2": ["a", "c"]}, completed_at=when.isoformat()
    )

    assert set(body) == FIELDS
    assert (body["score"], body["max_score"], body["percent"]) == (3.0, 8.0, 37.5)
    assert body["answers"] == {"1": "b", "2": ["a", "c"]}
    assert body["completed_at"] == "2026-03-01T12:30:00Z"
    assert QuizResult.objects.get(id=body["id"]).user_id == user.id
    assert auth_client.get(f"{RESULTS}/{body['id']}").json() == body


def test_percent_is_derived_never_stored():
    columns = {field.column for field in QuizResult._meta.concrete_fields}

    assert "percent" not in columns
    assert QuizResult(score=1, max_score=3).percent == 33.33


def test_completed_at_defaults_to_now(auth_client):
    before = timezone.now()

    body = post(auth_client)

    assert QuizResult.objects.get(id=body["id"]).completed_at >= before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"score": 11, "max_score": 10}, "score"),
        ({"score": -1}, "score"),
        ({"max_score": 0, "score": 0}, "max_score"),
        ({"max_score": -5, "score": 0}, "max_score"),
        ({"score": "nan"}, "score"),
        ({"max_score": "inf"}, "max_score"),
        ({"score": "seven"}, "score"),
        ({"topic": ""}, "topic"),
        ({"topic": "t" * 256}, "topic"),
        ({"quiz_id": ""}, "quiz_id"),
        ({"answers": {"a": "x" * QUIZ_ANSWERS_MAX_BYTES}}, "answers"),
        ({"answers": ["a\x00"]}, "answers"),
        ({"answers": {"deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}, "answers"),
        ({"completed_at": "yesterday"}, "completed_at"),
        ({"completed_at": (timezone.now() + timedelta(days=1)).isoformat()}, "completed_at"),
    ],
)
def test_invalid_results_are_refused(auth_client, fields, field):
    body = {"quiz_id": "q1", "topic": "python", "score": 7, "max_score": 10, **fields}

    response = auth_client.post(RESULTS, body, format="json")

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not QuizResult.objects.exists()


def test_the_edges_of_the_score_are_allowed(auth_client):
    assert post(auth_client, score=0, max_score=5)["percent"] == 0.0
    assert post(auth_client, score=5, max_score=5)["percent"] == 100.0
    assert post(auth_client, score=2.5, max_score=3)["percent"] == 83.33


def test_answers_may_be_any_json(auth_client):
    assert post(auth_client, answers=["a", 1, None, {"b": True}])["answers"] == ["a", 1, None, {"b": True}]


def test_the_list_filters_by_topic_latest_first(auth_client):
    now = timezone.now()
    for days, topic in [(3, "python"), (2, "sql"), (1, "python")]:
        post(
            auth_client,
            topic=topic,
            quiz_id=f"q{days}",
            completed_at=(now - timedelta(days=days)).isoformat(),
        )

    everything = auth_client.get(RESULTS).json()["results"]
    python = auth_client.get(RESULTS, {"topic": "python"}).json()

    assert [r["quiz_id"] for r in everything] == ["q1", "q2", "q3"]
    assert [r["quiz_id"] for r in python["results"]] == ["q1", "q3"]
    assert auth_client.get(RESULTS, {"topic": "go"}).json()["results"] == []


def test_the_list_is_paginated(auth_client):
    for index in range(5):
        post(auth_client, quiz_id=f"q{index}")

    page = auth_client.get(RESULTS, {"page_size": 2}).json()

    assert len(page["results"]) == 2
    assert page["next"]
    second = auth_client.get(page["next"]).json()
    third = auth_client.get(second["next"]).json()
    ids = [r["id"] for p in (page, second, third) for r in p["results"]]
    assert len(set(ids)) == 5
    assert third["next"] is None


def test_delete_removes_the_result(auth_client):
    result = post(auth_client)

    assert auth_client.delete(f"{RESULTS}/{result['id']}").status_code == 204
    assert not QuizResult.objects.exists()


def test_another_users_result_is_a_404_and_stays(auth_client, admin_client):
    theirs = post(admin_client, topic="secret")
    url = f"{RESULTS}/{theirs['id']}"

    assert auth_client.get(url).status_code == 404
    assert auth_client.delete(url).status_code == 404
    assert auth_client.get(RESULTS).json()["results"] == []
    assert auth_client.get(RESULTS, {"topic": "secret"}).json()["results"] == []
    assert auth_client.get(STATS).json() == []
    assert QuizResult.objects.filter(id=theirs["id"]).exists()


def test_results_are_not_edited(auth_client):
    result = post(auth_client)

    assert auth_client.patch(f"{RESULTS}/{result['id']}", {"score": 10}, format="json").status_code == 405
    assert auth_client.put(f"{RESULTS}/{result['id']}", {"score": 10}, format="json").status_code == 405


def test_results_need_a_token(api_client):
    assert api_client.get(RESULTS).status_code == 401
    assert api_client.get(STATS).status_code == 401


# --- stats -----------------------------------------------------------------------------------------


def test_stats_per_topic(auth_client, admin_client):
    now = timezone.now().replace(microsecond=0)
    attempts = [
        ("python", 5, 10, 3),  # 50 %
        ("python", 9, 10, 2),  # 90 %
        ("python", 7, 10, 1),  # 70 %, the last one
        ("sql", 1, 4, 5),  # 25 %
    ]
    for topic, score, max_score, days in attempts:
        post(
            auth_client,
            topic=topic,
            score=score,
            max_score=max_score,
            completed_at=(now - timedelta(days=days)).isoformat(),
        )
    post(admin_client, topic="python", score=0, max_score=10)  # not the caller's

    stats = auth_client.get(STATS)

    assert stats.status_code == 200
    assert stats.json() == [
        {
            "topic": "python",
            "attempts": 3,
            "best_percent": 90.0,
            "average_percent": 70.0,
            "last_percent": 70.0,
            "last_attempt_at": (now - timedelta(days=1)).isoformat().replace("+00:00", "Z"),
        },
        {
            "topic": "sql",
            "attempts": 1,
            "best_percent": 25.0,
            "average_percent": 25.0,
            "last_percent": 25.0,
            "last_attempt_at": (now - timedelta(days=5)).isoformat().replace("+00:00", "Z"),
        },
    ]


def test_stats_cost_one_query_whatever_the_number_of_topics(auth_client):
    auth_client.get(STATS)  # warms the caller's auth entries
    for index in range(12):
        post(auth_client, topic=f"topic-{index % 6}", score=index % 10)

    with CaptureQueriesContext(connection) as ctx:
        body = auth_client.get(STATS).json()

    assert len(body) == 6
    assert len(ctx.captured_queries) == expected_queries("GET /api/v1/quiz-results/stats") == 1
