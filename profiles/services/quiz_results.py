"""Quiz results of the test generator: stored as given, checked for a sensible score."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from core.errors import NotFound
from core.ids import Id

from ..models import QuizResult


def quiz_result_create(
    *,
    user_id: Id,
    quiz_id: str,
    topic: str,
    score: float,
    max_score: float,
    answers: Any = None,
    completed_at: datetime | None = None,
) -> QuizResult:
    """Store one attempt; `0 <= score <= max_score` and `max_score > 0`."""
    errors: dict[str, list[str]] = {}
    if max_score <= 0:
        errors["max_score"] = ["Must be greater than 0."]
    if score < 0:
        errors["score"] = ["Must not be negative."]
    elif max_score > 0 and score > max_score:
        errors["score"] = ["Must not be greater than max_score."]
    now = timezone.now()
    if completed_at is not None and completed_at > now + timedelta(minutes=5):
        errors["completed_at"] = ["Must not be in the future."]
    if errors:
        raise ValidationError(errors)
    return QuizResult.objects.create(
        user_id=user_id,
        quiz_id=quiz_id,
        topic=topic,
        score=score,
        max_score=max_score,
        answers=answers if answers is not None else {},
        completed_at=completed_at or now,
        created_at=now,
    )


def quiz_result_delete(*, user_id: Id, result_id: Id) -> None:
    deleted, _ = QuizResult.objects.filter(user_id=user_id, id=result_id).delete()
    if not deleted:
        raise NotFound("No such quiz result.")
