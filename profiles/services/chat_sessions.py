"""Chat sessions: at most `MAX_USER_SESSIONS` per user, the least recently active rotated out."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, Value, When
from django.utils import timezone

from core.errors import NotFound
from core.ids import Id

from ..models import ChatSession
from .owner_lock import owner_lock


def chat_session_create(
    *, user_id: Id, external_id: str, title: str = "", metadata: dict[str, Any] | None = None
) -> ChatSession:
    """Record a session of the agent; beyond the limit, delete the least recently active.

    Atomic on both databases, so two creations at once never leave one too many:
    the owner's lock orders creations of one user, and the DELETE then reads a
    snapshot that includes the other's committed row. The new session itself is
    never the one removed.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            owner_lock(user_id=user_id)
            session = ChatSession.objects.create(
                user_id=user_id,
                external_id=external_id,
                title=title,
                metadata=metadata or {},
                created_at=now,
                last_activity_at=now,
            )
            others = ChatSession.objects.filter(user_id=user_id).exclude(id=session.id)
            keep = others.order_by("-last_activity_at", "-created_at").values("id")[
                : settings.MAX_USER_SESSIONS - 1
            ]
            others.exclude(id__in=keep).delete()
    except IntegrityError:
        if ChatSession.objects.filter(user_id=user_id, external_id=external_id).exists():
            raise ValidationError(
                {"external_id": ["You already have a chat session with this external_id."]}
            ) from None
        raise
    return session


def chat_session_update(
    *,
    user_id: Id,
    session_id: Id,
    title: str | None = None,
    metadata: dict[str, Any] | None = None,
    touch: bool = False,
    last_activity_at: datetime | None = None,
) -> ChatSession:
    """Change title and metadata; `touch` (now) or `last_activity_at` move it forward, never back.

    One UPDATE whose CASE keeps the later of the stored and the given time, so
    two updates at once cannot move it backwards either.
    """
    now = timezone.now()
    if last_activity_at is not None and last_activity_at > now + timedelta(minutes=5):
        raise ValidationError({"last_activity_at": ["Must not be in the future."]})
    activity = now if touch else last_activity_at
    changes: dict[str, Any] = {"updated_at": now}
    if title is not None:
        changes["title"] = title
    if metadata is not None:
        changes["metadata"] = metadata
    if activity is not None:
        changes["last_activity_at"] = Case(
            When(last_activity_at__lt=activity, then=Value(activity)), default="last_activity_at"
        )
    if not ChatSession.objects.filter(user_id=user_id, id=session_id).update(**changes):
        raise NotFound("No such chat session.")
    return ChatSession.objects.get(id=session_id)


def chat_session_delete(*, user_id: Id, session_id: Id) -> None:
    deleted, _ = ChatSession.objects.filter(user_id=user_id, id=session_id).delete()
    if not deleted:
        raise NotFound("No such chat session.")
