"""The profile data of one user, for `GET /users/me/export` (called by `accounts.selectors`)."""

from __future__ import annotations

from typing import Any

from accounts.api_shapes import api_time
from core.ids import Id

from ..models import ChatSession, LLMSetting, QuizResult


def profile_data_export(*, user_id: Id) -> dict[str, Any]:
    """The saved LLM settings, every chat session and every quiz result, as stored."""
    return {
        "llm_settings": [
            {
                "purpose": s.purpose,
                "provider": s.provider,
                "model": s.model,
                "temperature": s.temperature,
                "max_tokens": s.max_tokens,
                "updated_at": api_time(s.updated_at),
            }
            for s in LLMSetting.objects.filter(user_id=user_id).order_by("purpose")
        ],
        "chat_sessions": [
            {
                "id": str(c.id),
                "external_id": c.external_id,
                "title": c.title,
                "metadata": c.metadata,
                "created_at": api_time(c.created_at),
                "updated_at": api_time(c.updated_at),
                "last_activity_at": api_time(c.last_activity_at),
            }
            for c in ChatSession.objects.filter(user_id=user_id).order_by("-last_activity_at")
        ],
        "quiz_results": [
            {
                "id": str(q.id),
                "quiz_id": q.quiz_id,
                "topic": q.topic,
                "score": q.score,
                "max_score": q.max_score,
                "percent": q.percent,
                "answers": q.answers,
                "completed_at": api_time(q.completed_at),
            }
            for q in QuizResult.objects.filter(user_id=user_id).order_by("-completed_at").iterator()
        ],
    }
