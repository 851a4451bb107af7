"""Processings: a resume against requirements, sent to the AI handler, and its result coming back.

Start: both documents must be the caller's; the start is counted against the limit
(`profiles.processing_limit`); a `queued` row and the `new_request` event (both texts, topic
`KAFKA_TOPIC_AI_REQUESTS`) are written in one transaction. The result arrives as
`processing_result` through `manage.py consume_events` (`profiles.handlers`).
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import NotFound
from core.ids import Id
from notifications.consumer import InvalidMessage, shown
from notifications.models import Kind
from notifications.services import event_emit, notification_send

from ..models import Processing, ProcessingStatus, Requirements, Resume
from ..processing_limit import processing_start_hit
from ..selectors.documents import DocumentModel, document_get, document_not_found

logger = logging.getLogger(__name__)

#: What a result may say; `queued` is only ever set here, at the start.
RESULT_STATUSES = frozenset({ProcessingStatus.DONE.value, ProcessingStatus.FAILED.value})


def document_text(*, model: DocumentModel, user_id: Id, document_id: Id) -> str:
    """A caller's document text, through the cache (`document_get`: another user's is not found)."""
    return str(document_get(model=model, user_id=user_id, document_id=document_id)["text"])


def processing_start(*, user_id: Id, resume_id: Id, requirements_id: Id) -> Processing:
    """Queue a processing and emit `new_request`; 429 over the limit, 404 for a document not the caller's."""
    # Counted first, as the seed does: probing for documents spends starts too.
    processing_start_hit(user_id=user_id)
    resume_text = document_text(model=Resume, user_id=user_id, document_id=resume_id)
    requirements_text = document_text(model=Requirements, user_id=user_id, document_id=requirements_id)
    with transaction.atomic():
        # Locked, so a delete racing this start waits for it (then takes the processing along)
        # instead of the insert failing on a vanished document.
        if not Resume.objects.select_for_update().filter(id=resume_id, user_id=user_id).exists():
            raise document_not_found(Resume)
        if not Requirements.objects.select_for_update().filter(id=requirements_id, user_id=user_id).exists():
            raise document_not_found(Requirements)
        processing = Processing.objects.create(
            user_id=user_id, resume_id=resume_id, requirements_id=requirements_id
        )
        event_emit(
            name="new_request",
            topic=settings.KAFKA_TOPIC_AI_REQUESTS,
            payload={
                "processing_id": str(processing.id),
                "user_id": str(user_id),
                "resume_id": str(resume_id),
                "requirements_id": str(requirements_id),
                "resume_text": resume_text,
                "requirements_text": requirements_text,
            },
        )
    return processing


@transaction.atomic
def processing_delete(*, user_id: Id, processing_id: Id) -> None:
    deleted, _ = Processing.objects.filter(id=processing_id, user_id=user_id).delete()
    if not deleted:
        raise NotFound("Processing not found.")
    event_emit(
        name="delete_processing",
        payload={"user_id": str(user_id), "processing_id": str(processing_id)},
    )


def _score(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            score = float(value)
        except OverflowError:  # an integer past any float: no score at all
            score = math.inf
        if math.isfinite(score) and 0 <= score <= 100:
            return score
    raise InvalidMessage(f"score must be a finite number from 0 to 100 or null, got {shown(value)}")


def processing_result_validate(payload: dict[str, Any]) -> dict[str, Any]:
    """A `processing_result` against its schema (API.md → Events), before anything is stored.

    Returns the arguments of `processing_result_store`; raises `InvalidMessage` (the consumer
    dead-letters it as `invalid`, never retried) for a bad id, status, score or result.
    """
    raw_id = payload.get("processing_id")
    try:
        processing_id = uuid.UUID(raw_id) if isinstance(raw_id, str) else None
    except ValueError:
        processing_id = None
    if processing_id is None:
        raise InvalidMessage(f"processing_id must be a UUID, got {shown(raw_id)}")
    status = payload.get("status")
    # Checked as a string first: a list is unhashable, and `in` a frozenset would raise TypeError.
    if not isinstance(status, str) or status not in RESULT_STATUSES:
        raise InvalidMessage(f"status must be one of {sorted(RESULT_STATUSES)}, got {shown(status)}")
    score = _score(payload.get("score"))
    result = payload.get("result")
    try:
        # Measured as it is stored and served; NaN and Infinity are no JSON a client could read.
        size = len(json.dumps(result, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode())
    except ValueError as exc:
        raise InvalidMessage(f"result is not plain JSON: {exc}") from None
    if size > settings.PROCESSING_RESULT_MAX_BYTES:
        raise InvalidMessage(
            f"result is {size} bytes serialized, over PROCESSING_RESULT_MAX_BYTES "
            f"({settings.PROCESSING_RESULT_MAX_BYTES})"
        )
    return {"processing_id": processing_id, "status": status, "score": score, "result": result}


@transaction.atomic
def processing_result_store(
    *, processing_id: uuid.UUID, status: str, score: float | None, result: Any
) -> str:
    """Apply a validated `processing_result` from the AI handler; returns what happened.

    "stored", or why it was ignored: "unknown" (no such processing: never existed, or deleted
    since), "duplicate" (it has its result already). Ignored results are logged, not dead-lettered:
    the AI handler did nothing wrong (API.md: "Duplicates and unknown ids are ignored and logged").
    """
    processing = Processing.objects.select_for_update().filter(id=processing_id).first()
    if processing is None:
        logger.warning("processing_result ignored: processing %s unknown or deleted", processing_id)
        return "unknown"
    if processing.status != ProcessingStatus.QUEUED:
        logger.info(
            "processing_result ignored: processing %s is %s already", processing_id, processing.status
        )
        return "duplicate"
    processing.status = status
    processing.result = result
    processing.score = score
    processing.finished_at = timezone.now()
    processing.save(update_fields=["status", "result", "score", "finished_at"])
    done = status == ProcessingStatus.DONE
    notification_send(
        user_id=processing.user_id,
        kind=Kind.PROCESSING,
        title="Your resume has been processed" if done else "Your resume could not be processed",
        body=f"Score: {score:g}" if done and score is not None else "",
        data={"processing_id": str(processing.id), "status": status, "score": score},
    )
    event_emit(
        name="new_processing",
        payload={
            "processing_id": str(processing.id),
            "user_id": str(processing.user_id),
            "status": status,
            "score": score,
        },
    )
    return "stored"
