"""Resumes and requirements (API.md → "Resumes, requirements, processing"): lists and reads, the
texts read through the cache with the seed's lifetimes, isolation, deletes with their files and
processings, the events, export and purge."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.tests.support import CACHE_DOWN
from notifications import services as notification_services
from profiles.models import Processing, Requirements, Resume

from . import files
from .support import events, other_client, ttl

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request", "document_dir")]

API = "/api/v1"
QUERY_COUNTS = json.loads(
    (Path(__file__).resolve().parents[2] / "config/tests/query_counts.json").read_text()
)


def create(client, kind: str = "resumes", text: str = "Some text", **extra) -> dict:
    response = client.post(f"{API}/{kind}", {"text": text, **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def upload(client, kind: str, name: str, data: bytes) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(f"{API}/{kind}", {"file": SimpleUploadedFile(name, data)}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def start(client, resume_id: str, requirements_id: str) -> dict:
    response = client.post(
        f"{API}/processings", {"resume_id": resume_id, "requirements_id": requirements_id}, format="json"
    )
    assert response.status_code == 202, response.content
    return response.json()


# --- reads -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["resumes", "requirements"])
def test_list_is_the_callers_newest_first_and_paginated(auth_client, kind):
    ids = [create(auth_client, kind, f"text {i}")["id"] for i in range(3)]
    create(other_client(), kind, "not mine")
    body = auth_client.get(f"{API}/{kind}?page_size=2").json()
    assert set(body) == {"next", "previous", "results"}
    assert [r["id"] for r in body["results"]] == ids[::-1][:2]
    rest = auth_client.get(body["next"]).json()
    assert [r["id"] for r in rest["results"]] == ids[:1]
    assert set(body["results"][0]) == {
        "id",
        "title",
        "text",
        "source",
        "file_name",
        "file_size",
        "created_at",
    }


@pytest.mark.parametrize("kind", ["resumes", "requirements"])
def test_list_queries_are_pinned_and_do_not_grow_with_the_page(auth_client, kind):
    create(auth_client, kind)
    auth_client.get(f"{API}/{kind}")  # the caller's principal is cached now
    with CaptureQueriesContext(connection) as one:
        assert auth_client.get(f"{API}/{kind}").status_code == 200
    for index in range(25):
        create(auth_client, kind, f"t{index}")
    with CaptureQueriesContext(connection) as many:
        assert len(auth_client.get(f"{API}/{kind}?page_size=26").json()["results"]) == 26
    assert len(one) == len(many) == QUERY_COUNTS[f"GET /api/v1/{kind}"]


@pytest.mark.parametrize(
    ("kind", "key", "setting"),
    [
        ("resumes", "resume", "STORAGE_TIME_RESUME"),
        ("requirements", "requirements", "STORAGE_TIME_REQUIREMENTS"),
    ],
)
def test_texts_are_read_through_the_cache_with_the_seed_lifetimes(auth_client, settings, kind, key, setting):
    assert (settings.STORAGE_TIME_RESUME, settings.STORAGE_TIME_REQUIREMENTS) == (3600, 259200)
    document = create(auth_client, kind, "Cached text", title="T")
    cached = cache.get(f"{key}:{document['id']}")
    assert cached["text"] == "Cached text"
    assert getattr(settings, setting) - 5 < ttl(f"{key}:{document['id']}") <= getattr(settings, setting)
    auth_client.get(f"{API}/users/me")  # the principal cached too
    with CaptureQueriesContext(connection) as queries:
        response = auth_client.get(f"{API}/{kind}/{document['id']}")
    assert response.json() == document
    assert len(queries) == 0  # a warm read is answered from the cache

    cache.delete(f"{key}:{document['id']}")  # expired: the database answers and refills
    assert auth_client.get(f"{API}/{kind}/{document['id']}").json() == document
    assert cache.get(f"{key}:{document['id']}")["text"] == "Cached text"


def test_the_database_is_the_truth_the_cache_only_speeds_it_up(auth_client):
    document = create(auth_client, "resumes", "Original")
    Resume.objects.filter(id=document["id"]).delete()  # gone behind the cache's back (an admin purge)
    cache.delete(f"resume:{document['id']}")
    assert auth_client.get(f"{API}/resumes/{document['id']}").status_code == 404


def test_reads_work_with_the_cache_down(auth_client):
    document = create(auth_client, "requirements", "Still here")
    with override_settings(CACHES=CACHE_DOWN):
        response = auth_client.get(f"{API}/requirements/{document['id']}")
        listed = auth_client.get(f"{API}/requirements").json()["results"]
    assert response.status_code == 200
    assert response.json()["text"] == "Still here"
    assert listed[0]["id"] == document["id"]


# --- isolation --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["resumes", "requirements"])
def test_another_users_document_is_404_even_from_the_cache(auth_client, kind):
    document = upload(auth_client, kind, "mine.txt", b"private words")
    assert auth_client.get(f"{API}/{kind}/{document['id']}").status_code == 200  # warm in the cache
    intruder = other_client()
    for method, path in [
        ("get", f"{API}/{kind}/{document['id']}"),
        ("get", f"{API}/{kind}/{document['id']}/file"),
        ("delete", f"{API}/{kind}/{document['id']}"),
    ]:
        response = getattr(intruder, method)(path)
        assert response.status_code == 404, (method, path)
        assert b"private" not in response.content
    assert intruder.get(f"{API}/{kind}").json()["results"] == []
    assert auth_client.get(f"{API}/{kind}/{document['id']}").status_code == 200


def test_unauthenticated_calls_are_401(api_client):
    for path in ["resumes", "requirements", "processings"]:
        assert api_client.get(f"{API}/{path}").status_code == 401


def test_a_malformed_id_is_404(auth_client):
    assert auth_client.get(f"{API}/resumes/not-a-uuid").status_code == 404


# --- files ----------------------------------------------------------------------------------------------


def test_the_owner_downloads_the_uploaded_file(auth_client):
    data = files.pdf_bytes(["Downloadable"])
    document = upload(auth_client, "resumes", "cv.pdf", data)
    response = auth_client.get(f"{API}/resumes/{document['id']}/file")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert 'filename="cv.pdf"' in response["Content-Disposition"]
    typed = create(auth_client, "resumes", "typed in")
    assert auth_client.get(f"{API}/resumes/{typed['id']}/file").status_code == 404


def test_files_have_no_public_url(auth_client, document_dir):
    document = upload(auth_client, "resumes", "cv.txt", b"words")
    [stored] = files.stored_files(document_dir)
    for path in [
        f"/media/resume/{stored.name}",
        f"/resume/{stored.name}",
        f"/documents/resume/{stored.name}",
    ]:
        assert auth_client.get(path).status_code == 404
    assert document["file_name"] == "cv.txt"


# --- deletes and events ---------------------------------------------------------------------------------


def test_creating_emits_new_resume_and_new_requirements(auth_client, user, settings):
    resume = create(auth_client, "resumes")
    requirements = upload(auth_client, "requirements", "r.txt", b"needs")
    [new_resume] = events("new_resume")
    [new_requirements] = events("new_requirements")
    assert new_resume["resume_id"] == resume["id"]
    assert new_requirements["requirements_id"] == requirements["id"]
    for event, document in [(new_resume, resume), (new_requirements, requirements)]:
        assert event["user_id"] == str(user.id)
        assert datetime.fromisoformat(event["created_at"]) == datetime.fromisoformat(document["created_at"])
    from notifications.models import OutboxEvent

    assert set(OutboxEvent.objects.filter(key__startswith="new_re").values_list("topic", flat=True)) == {
        settings.KAFKA_TOPIC_DATA
    }


def test_deleting_a_resume_removes_row_file_and_cache_entry(auth_client, user, document_dir):
    document = upload(auth_client, "resumes", "cv.txt", b"bye")
    assert len(files.stored_files(document_dir)) == 1
    assert auth_client.delete(f"{API}/resumes/{document['id']}").status_code == 204
    assert not Resume.objects.exists()
    assert files.stored_files(document_dir) == []
    assert cache.get(f"resume:{document['id']}") is None
    assert auth_client.get(f"{API}/resumes/{document['id']}").status_code == 404
    assert events("delete_resume") == [
        {
            **events("delete_resume")[0],
            "user_id": str(user.id),
            "resume_id": document["id"],
            "processing_ids": [],
        }
    ]
    assert auth_client.delete(f"{API}/resumes/{document['id']}").status_code == 404


def test_deleting_requirements_deletes_their_processings_and_emits_both_ids(auth_client, user, document_dir):
    resume = create(auth_client, "resumes")
    requirements = upload(auth_client, "requirements", "r.docx", files.docx_bytes(["Needs Python"]))
    other_requirements = create(auth_client, "requirements")
    processings = [start(auth_client, resume["id"], requirements["id"])["id"] for _ in range(2)]
    kept = start(auth_client, resume["id"], other_requirements["id"])["id"]

    assert auth_client.delete(f"{API}/requirements/{requirements['id']}").status_code == 204

    assert list(Processing.objects.values_list("id", flat=True)) == [Processing.objects.get(id=kept).id]
    [event] = events("delete_requirements")
    assert event["user_id"] == str(user.id)
    assert event["requirements_id"] == requirements["id"]
    assert sorted(event["processing_ids"]) == sorted(processings)
    assert files.stored_files(document_dir) == []


def test_a_requirements_delete_is_one_transaction(auth_client, monkeypatch, document_dir):
    """The event is written last: when it fails, the processings and the file are still there."""
    from profiles.services import documents as document_services

    resume = create(auth_client, "resumes")
    requirements = upload(auth_client, "requirements", "r.txt", b"needs")
    processing = start(auth_client, resume["id"], requirements["id"])

    def broken_emit(**kwargs):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(document_services, "event_emit", broken_emit)
    response = auth_client.delete(f"{API}/requirements/{requirements['id']}")
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    assert Requirements.objects.filter(id=requirements["id"]).exists()
    assert Processing.objects.filter(id=processing["id"]).exists()
    assert len(files.stored_files(document_dir)) == 1


# --- export and purge -------------------------------------------------------------------------------


def test_export_includes_documents_processings_and_files(auth_client, user):
    resume = upload(auth_client, "resumes", "cv.pdf", files.pdf_bytes(["Exported"]))
    requirements = create(auth_client, "requirements", "Needs", title="Job")
    processing = start(auth_client, resume["id"], requirements["id"])
    create(other_client(), "resumes", "someone else's")

    data = auth_client.get(f"{API}/users/me/export").json()

    [exported_resume] = data["resumes"]
    assert exported_resume["id"] == resume["id"]
    assert exported_resume["text"] == "Exported"
    assert exported_resume["file"]["name"] == "cv.pdf"
    assert exported_resume["file"]["size"] == resume["file_size"]
    assert auth_client.get(exported_resume["file"]["download"]).status_code == 200
    [exported_requirements] = data["requirements"]
    assert (exported_requirements["title"], exported_requirements["file"]) == ("Job", None)
    [exported_processing] = data["processings"]
    assert exported_processing["id"] == processing["id"]
    assert exported_processing["status"] == "queued"
    assert exported_processing["resume_id"] == resume["id"]


def test_purge_removes_documents_processings_and_files(auth_client, user, settings, document_dir):
    from accounts import services as account_services

    resume = upload(auth_client, "resumes", "cv.txt", b"to be purged")
    requirements = upload(auth_client, "requirements", "r.txt", b"also purged")
    start(auth_client, resume["id"], requirements["id"])
    assert len(files.stored_files(document_dir)) == 2
    type(user).objects.filter(id=user.id).update(
        deleted_at=timezone.now() - timedelta(days=settings.ACCOUNT_RESTORE_DAYS + 1)
    )

    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert account_services.users_purge_deleted() == 1

    assert not Resume.objects.exists()
    assert not Requirements.objects.exists()
    assert not Processing.objects.exists()
    assert files.stored_files(document_dir) == []
    assert notification_services is not None
