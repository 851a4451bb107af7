"""Processings (API.md → "Resumes, requirements, processing"): start (202, `new_request` through the
outbox with both texts), isolation, the start limit with the seed's semantics and keys (429 with
Retry-After, the block, 503 when the cache is down), lists, deletes, and the `processing_result`
handler of the consumer."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from accounts.tests.support import CACHE_DOWN
from core.errors import ServiceError
from core.exceptions import service_error_status
from notifications import consumer, outbox
from notifications.models import Kind, Notification, OutboxEvent
from profiles.models import Processing
from profiles.processing_limit import block_key, counter_key, processing_start_hit
from testing.races import run_at_once

from .support import events, other_client, ttl

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request", "document_dir")]

API = "/api/v1"
QUERY_COUNTS = json.loads(
    (Path(__file__).resolve().parents[2] / "config/tests/query_counts.json").read_text()
)


def create(client, kind: str, text: str) -> str:
    response = client.post(f"{API}/{kind}", {"text": text}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def start(client, resume_id: str, requirements_id: str):
    return client.post(
        f"{API}/processings", {"resume_id": resume_id, "requirements_id": requirements_id}, format="json"
    )


@pytest.fixture
def documents(auth_client) -> tuple[str, str]:
    return create(auth_client, "resumes", "Резюме: Python"), create(
        auth_client, "requirements", "Нужен Python"
    )


# --- start ------------------------------------------------------------------------------------------------


def test_start_is_202_queued_and_emits_new_request_with_both_texts(auth_client, user, documents, settings):
    resume_id, requirements_id = documents
    response = start(auth_client, resume_id, requirements_id)
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {
        "id",
        "resume_id",
        "requirements_id",
        "status",
        "result",
        "score",
        "created_at",
        "finished_at",
    }
    assert (body["status"], body["resume_id"], body["requirements_id"]) == (
        "queued",
        resume_id,
        requirements_id,
    )
    assert (body["result"], body["score"], body["finished_at"]) == (None, None, None)
    assert Processing.objects.get(id=body["id"]).user_id == user.id

    [row] = OutboxEvent.objects.filter(key="new_request")
    assert row.topic == settings.KAFKA_TOPIC_AI_REQUESTS == "AI_handler"
    assert {k: v for k, v in row.payload.items() if k not in {"event_id", "occurred_at"}} == {
        "processing_id": body["id"],
        "user_id": str(user.id),
        "resume_id": resume_id,
        "requirements_id": requirements_id,
        "resume_text": "Резюме: Python",
        "requirements_text": "Нужен Python",
    }


def test_a_new_request_with_two_texts_of_the_maximum_fits_a_kafka_message(auth_client, settings):
    """Two Cyrillic texts of DOCUMENT_MAX_TEXT_CHARS: under Kafka's default 1 MB message."""
    limit = settings.DOCUMENT_MAX_TEXT_CHARS
    resume_id = create(auth_client, "resumes", "ж" * limit)
    requirements_id = create(auth_client, "requirements", "щ" * limit)
    assert start(auth_client, resume_id, requirements_id).status_code == 202
    [row] = OutboxEvent.objects.filter(key="new_request")
    assert len(outbox._encode(row.payload)) < 1_000_000


@pytest.mark.parametrize("whose", ["resume", "requirements", "both"])
def test_a_processing_naming_another_users_document_is_404(auth_client, documents, whose):
    resume_id, requirements_id = documents
    stranger = other_client()
    theirs_resume = create(stranger, "resumes", "theirs")
    theirs_requirements = create(stranger, "requirements", "theirs")
    response = start(
        auth_client,
        theirs_resume if whose in {"resume", "both"} else resume_id,
        theirs_requirements if whose in {"requirements", "both"} else requirements_id,
    )
    assert response.status_code == 404
    assert not Processing.objects.exists()
    assert not OutboxEvent.objects.filter(key="new_request").exists()


@pytest.mark.parametrize(
    "body", [{}, {"resume_id": "x", "requirements_id": "y"}, {"resume_id": str(uuid.uuid4())}, []]
)
def test_malformed_starts_are_400(auth_client, body):
    assert auth_client.post(f"{API}/processings", body, format="json").status_code == 400
    assert cache.get(counter_key("anyone")) is None


# --- the start limit ---------------------------------------------------------------------------------


def test_the_sixth_start_in_a_minute_is_429_and_blocks_for_30_seconds(auth_client, user, documents, settings):
    assert (settings.PROCESSING_RATE_LIMIT, settings.PROCESSING_BLOCK_SECONDS) == (5, 30)
    resume_id, requirements_id = documents
    statuses = [start(auth_client, resume_id, requirements_id).status_code for _ in range(5)]
    assert statuses == [202] * 5
    assert cache.get(counter_key(user.id)) == 5
    assert 55 < ttl(counter_key(user.id)) <= 60

    refused = start(auth_client, resume_id, requirements_id)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "30"
    assert refused.json()["code"] == "processing_rate_limited"
    assert cache.get(block_key(user.id)) is not None
    assert 25 < ttl(block_key(user.id)) <= 30
    again = start(auth_client, resume_id, requirements_id)
    assert again.status_code == 429
    assert 1 <= int(again["Retry-After"]) <= 30
    assert Processing.objects.count() == 5
    assert OutboxEvent.objects.filter(key="new_request").count() == 5

    # The block over, the minute not: the count is still at the limit, so it blocks again.
    cache.delete(block_key(user.id))
    assert start(auth_client, resume_id, requirements_id).status_code == 429
    assert cache.get(block_key(user.id)) is not None
    # Both over: starts are accepted again.
    cache.delete_many([block_key(user.id), counter_key(user.id)])
    assert start(auth_client, resume_id, requirements_id).status_code == 202


def test_the_limit_is_per_user(auth_client, documents):
    resume_id, requirements_id = documents
    for _ in range(6):
        start(auth_client, resume_id, requirements_id)
    stranger = other_client()
    theirs = create(stranger, "resumes", "r"), create(stranger, "requirements", "q")
    assert start(stranger, *theirs).status_code == 202


def test_starts_naming_unknown_documents_are_counted_too(auth_client, user, documents):
    """As in the seed, the count comes first: probing for documents spends starts as well."""
    resume_id, requirements_id = documents
    for _ in range(5):
        assert start(auth_client, str(uuid.uuid4()), requirements_id).status_code == 404
    assert start(auth_client, resume_id, requirements_id).status_code == 429


def test_the_count_is_atomic_under_concurrent_starts(user):
    """20 threads at once against the cache in use (the in-process one, or Redis in CI): 5 pass."""

    def hit() -> str:
        try:
            processing_start_hit(user_id=user.id)
        except ServiceError as exc:
            return str(service_error_status(exc))
        return "ok"

    outcomes = run_at_once([hit] * 20)
    assert sorted(outcomes) == ["429"] * 15 + ["ok"] * 5


def test_with_the_cache_down_starts_are_refused_503_never_unlimited(auth_client, documents):
    resume_id, requirements_id = documents
    with override_settings(CACHES=CACHE_DOWN):
        response = start(auth_client, resume_id, requirements_id)
    assert response.status_code == 503
    assert response["Retry-After"]
    assert response.json()["code"] == "rate_limit_unavailable"
    assert not Processing.objects.exists()
    assert not OutboxEvent.objects.filter(key="new_request").exists()


# --- reads and deletes ----------------------------------------------------------------------------------


def test_list_filters_by_requirements_and_stays_the_callers(auth_client, documents):
    resume_id, requirements_id = documents
    second = create(auth_client, "requirements", "Другие требования")
    first_ids = [start(auth_client, resume_id, requirements_id).json()["id"] for _ in range(2)]
    other_id = start(auth_client, resume_id, second).json()["id"]
    stranger = other_client()
    start(stranger, create(stranger, "resumes", "r"), create(stranger, "requirements", "q"))

    everything = auth_client.get(f"{API}/processings").json()["results"]
    assert [p["id"] for p in everything] == [other_id, *first_ids[::-1]]
    filtered = auth_client.get(f"{API}/processings?requirements_id={requirements_id}").json()["results"]
    assert [p["id"] for p in filtered] == first_ids[::-1]
    assert auth_client.get(f"{API}/processings?requirements_id={uuid.uuid4()}").json()["results"] == []
    assert auth_client.get(f"{API}/processings?requirements_id=nope").status_code == 400


def test_processing_list_queries_are_pinned(auth_client, documents, settings):
    settings.PROCESSING_RATE_LIMIT = 100
    resume_id, requirements_id = documents
    start(auth_client, resume_id, requirements_id)
    auth_client.get(f"{API}/processings")
    with CaptureQueriesContext(connection) as one:
        auth_client.get(f"{API}/processings")
    for _ in range(20):
        start(auth_client, resume_id, requirements_id)
    with CaptureQueriesContext(connection) as many:
        assert len(auth_client.get(f"{API}/processings?page_size=21").json()["results"]) == 21
    assert len(one) == len(many) == QUERY_COUNTS["GET /api/v1/processings"]


def test_get_and_delete_a_processing(auth_client, user, documents):
    processing = start(auth_client, *documents).json()
    assert auth_client.get(f"{API}/processings/{processing['id']}").json() == processing
    stranger = other_client()
    assert stranger.get(f"{API}/processings/{processing['id']}").status_code == 404
    assert stranger.delete(f"{API}/processings/{processing['id']}").status_code == 404

    assert auth_client.delete(f"{API}/processings/{processing['id']}").status_code == 204
    assert not Processing.objects.exists()
    [event] = events("delete_processing")
    assert (event["user_id"], event["processing_id"]) == (str(user.id), processing["id"])
    assert auth_client.delete(f"{API}/processings/{processing['id']}").status_code == 404


def test_deleting_a_resume_takes_its_processings(auth_client, documents):
    resume_id, requirements_id = documents
    processing = start(auth_client, resume_id, requirements_id).json()
    assert auth_client.delete(f"{API}/resumes/{resume_id}").status_code == 204
    assert not Processing.objects.exists()
    assert events("delete_resume")[0]["processing_ids"] == [processing["id"]]


# --- the result handler -------------------------------------------------------------------------------


def deliver(payload: dict, *, event_id: str | None = None) -> str:
    body = {"event_id": event_id or str(uuid.uuid4()), **payload}
    return consumer.handle_message(
        key=b"processing_result", value=json.dumps(body).encode(), fallback_id="t/0/0"
    )


def test_a_result_is_stored_the_user_notified_and_new_processing_emitted(auth_client, user, documents):
    processing = start(auth_client, *documents).json()
    result = {"summary": "Хорошее совпадение", "matches": ["Python"]}
    outcome = deliver({"processing_id": processing["id"], "status": "done", "result": result, "score": 87.5})
    assert outcome == "handled"

    stored = auth_client.get(f"{API}/processings/{processing['id']}").json()
    assert (stored["status"], stored["result"], stored["score"]) == ("done", result, 87.5)
    assert stored["finished_at"] is not None
    [note] = Notification.objects.filter(user=user, kind=Kind.PROCESSING)
    assert note.data == {"processing_id": processing["id"], "status": "done", "score": 87.5}
    assert "87.5" in note.body
    [event] = events("new_processing")
    assert {k: event[k] for k in ("processing_id", "user_id", "status", "score")} == {
        "processing_id": processing["id"],
        "user_id": str(user.id),
        "status": "done",
        "score": 87.5,
    }
    assert OutboxEvent.objects.get(key="new_processing").topic == "uploading_data"


def test_a_failed_result_is_stored_as_failed(auth_client, user, documents):
    processing = start(auth_client, *documents).json()
    assert (
        deliver({"processing_id": processing["id"], "status": "failed", "result": "timeout", "score": None})
        == "handled"
    )
    assert Processing.objects.get(id=processing["id"]).status == "failed"
    assert (
        Notification.objects.get(user=user, kind=Kind.PROCESSING).title
        == "Your resume could not be processed"
    )


def test_a_second_result_for_a_processing_is_ignored_and_logged(auth_client, documents, caplog):
    processing = start(auth_client, *documents).json()
    deliver({"processing_id": processing["id"], "status": "done", "result": "first", "score": 1})
    deliver({"processing_id": processing["id"], "status": "failed", "result": "second", "score": 2})
    stored = Processing.objects.get(id=processing["id"])
    assert (stored.status, stored.result, stored.score) == ("done", "first", 1.0)
    assert Notification.objects.filter(kind=Kind.PROCESSING).count() == 1
    assert len(events("new_processing")) == 1
    assert "is done already" in caplog.text


@pytest.mark.parametrize(
    ("payload", "outcome", "logged"),
    [
        ({"processing_id": "PROCESSING", "status": "queued", "score": 1}, "invalid", "status must be one of"),
        ({"processing_id": "PROCESSING", "status": "weird", "score": 1}, "invalid", "status must be one of"),
        ({"processing_id": "PROCESSING", "status": "done", "score": "high"}, "invalid", "score must be a"),
        ({"processing_id": "PROCESSING", "status": "done", "score": True}, "invalid", "score must be a"),
        ({"processing_id": "not-a-uuid", "status": "done"}, "invalid", "processing_id must be a UUID"),
        ({"status": "done"}, "invalid", "processing_id must be a UUID"),
        # The AI handler did nothing wrong here: ignored and logged, not dead-lettered (API.md).
        (
            {"processing_id": str(uuid.UUID(int=7)), "status": "done", "score": 1},
            "handled",
            "unknown or deleted",
        ),
    ],
)
def test_bad_results_are_logged_and_taken_off_the_stream_never_raised(
    auth_client, documents, caplog, payload, outcome, logged
):
    processing = start(auth_client, *documents).json()
    payload = {k: (processing["id"] if v == "PROCESSING" else v) for k, v in payload.items()}
    # Taken off the stream, not retried; an invalid one is dead-lettered by `consumer.run`.
    assert deliver(payload) == outcome
    assert Processing.objects.get(id=processing["id"]).status == "queued"
    assert not Notification.objects.filter(kind=Kind.PROCESSING).exists()
    assert events("new_processing") == []
    assert logged in caplog.text


def test_a_result_for_a_deleted_processing_is_ignored(auth_client, documents, caplog):
    processing = start(auth_client, *documents).json()
    auth_client.delete(f"{API}/processings/{processing['id']}")
    assert deliver({"processing_id": processing["id"], "status": "done", "score": 3}) == "handled"
    assert "unknown or deleted" in caplog.text
    assert not Notification.objects.filter(kind=Kind.PROCESSING).exists()


def test_the_handler_is_registered_by_the_profiles_app():
    from profiles import handlers

    assert consumer.HANDLERS["processing_result"] is handlers.processing_result
