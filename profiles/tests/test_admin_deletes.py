"""The Django admin's delete doors for documents and processings (API.md → "Resumes, requirements,
processing": whatever door deletes one, the effects are the API's).

Each test posts the real admin pages as a superuser (the delete confirmation page and the bulk
"Delete selected" action, confirmed), then reads as the owner over the API: the object is gone
at once, though its text was cached, and the event of the API's delete is in the outbox.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from profiles.models import ChatSession, Processing, QuizResult, Requirements, Resume

from .support import events

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request", "document_dir")]

API = "/api/v1"


def create(client: Any, kind: str, text: str = "Some text") -> dict[str, Any]:
    response = client.post(f"{API}/{kind}", {"text": text}, format="json")
    assert response.status_code == 201, response.content
    return dict(response.json())


def start(client: Any, resume_id: str, requirements_id: str) -> str:
    body = {"resume_id": resume_id, "requirements_id": requirements_id}
    response = client.post(f"{API}/processings", body, format="json")
    assert response.status_code == 202, response.content
    return str(response.json()["id"])


def delete_page(admin_client: Any, model: str, pk: Any) -> Any:
    """The delete page's confirmation, as the browser posts it."""
    response = admin_client.post(f"/admin/profiles/{model}/{pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content.decode()[:2000]
    return response


def delete_selected(admin_client: Any, model: str, pks: list[Any]) -> Any:
    """The changelist's "Delete selected" action, confirmed on its second page."""
    selected = [str(pk) for pk in pks]
    confirm = admin_client.post(
        f"/admin/profiles/{model}/", {"action": "delete_selected", "_selected_action": selected}
    )
    assert confirm.status_code == 200
    assert b"Are you sure" in confirm.content
    response = admin_client.post(
        f"/admin/profiles/{model}/",
        {"action": "delete_selected", "_selected_action": selected, "post": "yes"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return response


def test_a_resume_deleted_on_its_admin_page_is_gone_from_the_owners_reads_at_once(
    auth_client, user, superuser_client
):
    resume = create(auth_client, "resumes")
    requirements = create(auth_client, "requirements")
    processing = start(auth_client, resume["id"], requirements["id"])
    assert auth_client.get(f"{API}/resumes/{resume['id']}").status_code == 200  # cached now
    assert cache.get(f"resume:{resume['id']}") is not None

    delete_page(superuser_client, "resume", resume["id"])

    assert auth_client.get(f"{API}/resumes/{resume['id']}").status_code == 404
    assert cache.get(f"resume:{resume['id']}") is None
    assert not Resume.objects.exists()
    assert not Processing.objects.exists()  # taken along, as by the API
    assert auth_client.get(f"{API}/processings/{processing}").status_code == 404
    [event] = events("delete_resume")
    assert event["user_id"] == str(user.id)
    assert event["resume_id"] == resume["id"]
    assert event["processing_ids"] == [processing]


def test_requirements_deleted_in_bulk_are_gone_at_once_each_with_its_event(
    auth_client, user, superuser_client
):
    first, second = create(auth_client, "requirements"), create(auth_client, "requirements")
    kept = create(auth_client, "requirements")
    resume = create(auth_client, "resumes")
    processing = start(auth_client, resume["id"], first["id"])
    for document in (first, second, kept):
        assert auth_client.get(f"{API}/requirements/{document['id']}").status_code == 200

    delete_selected(superuser_client, "requirements", [first["id"], second["id"]])

    for document in (first, second):
        assert auth_client.get(f"{API}/requirements/{document['id']}").status_code == 404
        assert cache.get(f"requirements:{document['id']}") is None
    assert auth_client.get(f"{API}/requirements/{kept['id']}").status_code == 200
    assert list(Requirements.objects.values_list("id", flat=True)) == [Requirements.objects.get().id]
    deleted = {e["requirements_id"]: e for e in events("delete_requirements")}
    assert set(deleted) == {first["id"], second["id"]}
    assert deleted[first["id"]]["processing_ids"] == [processing]
    assert deleted[second["id"]]["processing_ids"] == []
    assert all(e["user_id"] == str(user.id) for e in deleted.values())


def test_a_processing_deleted_in_the_admin_emits_delete_processing(auth_client, user, superuser_client):
    resume, requirements = create(auth_client, "resumes"), create(auth_client, "requirements")
    single, *bulk = [start(auth_client, resume["id"], requirements["id"]) for _ in range(3)]

    delete_page(superuser_client, "processing", single)
    delete_selected(superuser_client, "processing", bulk)

    assert not Processing.objects.exists()
    for processing in (single, *bulk):
        assert auth_client.get(f"{API}/processings/{processing}").status_code == 404
    emitted = events("delete_processing")
    assert sorted(e["processing_id"] for e in emitted) == sorted([single, *bulk])
    assert {e["user_id"] for e in emitted} == {str(user.id)}


def test_chat_sessions_and_quiz_results_are_deleted_through_their_services(
    auth_client, user, superuser_client, monkeypatch
):
    from profiles.services import chat_sessions, quiz_results

    called: list[str] = []
    for module, name in ((chat_sessions, "chat_session_delete"), (quiz_results, "quiz_result_delete")):
        original = getattr(module, name)

        def spy(*, _original: Any = original, _name: str = name, **kwargs: Any) -> None:
            called.append(_name)
            _original(**kwargs)

        monkeypatch.setattr(f"profiles.admin.{name}", spy)
    sessions = [ChatSession.objects.create(user=user, external_id=f"s{i}") for i in range(3)]
    results = [
        QuizResult.objects.create(user=user, quiz_id=f"q{i}", topic="t", score=1, max_score=2)
        for i in range(2)
    ]

    delete_page(superuser_client, "chatsession", sessions[0].pk)
    delete_selected(superuser_client, "chatsession", [s.pk for s in sessions[1:]])
    delete_selected(superuser_client, "quizresult", [r.pk for r in results])

    assert not ChatSession.objects.exists()
    assert not QuizResult.objects.exists()
    assert called == ["chat_session_delete"] * 3 + ["quiz_result_delete"] * 2


def test_a_bulk_delete_refused_part_way_deletes_nothing(auth_client, user, superuser_client, monkeypatch):
    """All or nothing: the bulk action runs in one transaction, and a refusal is the page's message."""
    from core.errors import ServiceError
    from profiles.services import documents

    first, second = create(auth_client, "resumes"), create(auth_client, "resumes")
    original = documents.document_delete
    calls = []

    def refuse_the_second(**kwargs: Any) -> Any:
        calls.append(kwargs["document_id"])
        if len(calls) == 2:
            raise ServiceError("Refused for the test.", code="refused")
        return original(**kwargs)

    monkeypatch.setattr("profiles.admin.document_delete", refuse_the_second)
    response = superuser_client.post(
        "/admin/profiles/resume/",
        {"action": "delete_selected", "_selected_action": [first["id"], second["id"]], "post": "yes"},
        follow=True,
    )

    assert b"Nothing was deleted: Refused for the test." in response.content
    assert Resume.objects.count() == 2
    assert events("delete_resume") == []
    for document in (first, second):
        assert auth_client.get(f"{API}/resumes/{document['id']}").status_code == 200
