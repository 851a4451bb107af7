"""The AI round trip through a real Kafka-protocol broker (Tansu): upload both documents, start a
processing, read `new_request` from the AI topic, answer with `processing_result` on the results
topic, run `manage.py consume_events --max-messages`, and see the processing done, the user
notified and `new_processing` on the data topic.

Topics and the consumer group are the test's own: the session broker is shared by two runs in CI.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from notifications import outbox
from notifications.models import Kind, Notification
from profiles.models import Processing
from testing.kafka import produce, read_topic, unique_name

from . import files

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db,
    pytest.mark.usefixtures("commit_per_request", "document_dir"),
]

API = "/api/v1"


def upload(client, kind: str, name: str, data: bytes) -> dict:
    response = client.post(f"{API}/{kind}", {"file": SimpleUploadedFile(name, data)}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def test_the_round_trip_through_the_broker(auth_client, user, settings, kafka_broker, no_producer):
    settings.KAFKA_BOOTSTRAP_SERVERS = [kafka_broker.bootstrap]
    settings.KAFKA_TOPIC_DATA = unique_name("data")
    settings.KAFKA_TOPIC_AI_REQUESTS = unique_name("ai")
    settings.KAFKA_TOPIC_AI_RESULTS = unique_name("results")
    settings.KAFKA_CONSUMER_GROUP = unique_name("group")

    resume = upload(auth_client, "resumes", "cv.pdf", files.pdf_bytes(["Ada Lovelace", "Analyst"]))
    requirements = upload(auth_client, "requirements", "job.docx", files.docx_bytes(["Needs an analyst"]))
    started = auth_client.post(
        f"{API}/processings",
        {"resume_id": resume["id"], "requirements_id": requirements["id"]},
        format="json",
    )
    assert started.status_code == 202, started.content
    processing_id = started.json()["id"]

    assert outbox.outbox_publish() == 3  # new_resume, new_requirements, new_request
    [request] = read_topic(kafka_broker.bootstrap, settings.KAFKA_TOPIC_AI_REQUESTS, expect=1)
    assert request.key == b"new_request"
    asked = json.loads(request.value)
    assert asked["processing_id"] == processing_id
    assert asked["user_id"] == str(user.id)
    assert (asked["resume_id"], asked["requirements_id"]) == (resume["id"], requirements["id"])
    assert (asked["resume_text"], asked["requirements_text"]) == ("Ada Lovelace\nAnalyst", "Needs an analyst")

    # The AI handler answers.
    answer = {
        "event_id": unique_name("result"),
        "processing_id": processing_id,
        "status": "done",
        "result": {"verdict": "a match"},
        "score": 92,
    }
    produce(
        kafka_broker.bootstrap,
        settings.KAFKA_TOPIC_AI_RESULTS,
        [(b"processing_result", json.dumps(answer).encode())],
    )
    out = io.StringIO()
    call_command("consume_events", "--max-messages", "1", "--timeout", "30", stdout=out)
    assert out.getvalue().strip() == "handled 1"

    processing = Processing.objects.get(id=processing_id)
    assert (processing.status, processing.score, processing.result) == ("done", 92.0, {"verdict": "a match"})
    assert processing.finished_at is not None
    shown = auth_client.get(f"{API}/processings/{processing_id}").json()
    assert (shown["status"], shown["score"]) == ("done", 92.0)
    note = Notification.objects.get(user=user, kind=Kind.PROCESSING)
    assert note.data["processing_id"] == processing_id
    assert auth_client.get(f"{API}/notifications/unread-count").json() == {"count": 1}

    assert outbox.outbox_publish() == 1
    records = read_topic(kafka_broker.bootstrap, settings.KAFKA_TOPIC_DATA, expect=3)
    by_key = {record.key: json.loads(record.value) for record in records}
    assert set(by_key) == {b"new_resume", b"new_requirements", b"new_processing"}
    done = by_key[b"new_processing"]
    assert {k: done[k] for k in ("processing_id", "user_id", "status", "score")} == {
        "processing_id": processing_id,
        "user_id": str(user.id),
        "status": "done",
        "score": 92.0,
    }
