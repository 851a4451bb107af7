"""Reads of quiz results, scoped to one user."""

from __future__ import annotations

from typing import Any

from django.db.models import Avg, Count, F, FloatField, Max, OuterRef, Subquery
from django.db.models.expressions import ExpressionWrapper

from core.ids import Id

from ..models import QuizResult

#: A result's percent, computed by the database (never stored).
PERCENT = ExpressionWrapper(F("score") * 100.0 / F("max_score"), output_field=FloatField())


def quiz_stats(*, user_id: Id) -> list[dict[str, Any]]:
    """Per topic: attempts, best and average percent, the last attempt. One SQL query."""
    last = (
        QuizResult.objects.filter(user_id=user_id, topic=OuterRef("topic"))
        .order_by("-completed_at", "-created_at")
        .annotate(pct=PERCENT)
        .values("pct")[:1]
    )
    rows = (
        QuizResult.objects.filter(user_id=user_id)
        .values("topic")
        .annotate(
            attempts=Count("id"),
            best=Max(PERCENT),
            average=Avg(PERCENT),
            last_at=Max("completed_at"),
            last=Subquery(last, output_field=FloatField()),
        )
        .order_by("topic")
    )
    return [
        {
            "topic": row["topic"],
            "attempts": row["attempts"],
            "best_percent": round(row["best"], 2),
            "average_percent": round(row["average"], 2),
            "last_percent": round(row["last"], 2),
            "last_attempt_at": row["last_at"],
        }
        for row in rows
    ]
