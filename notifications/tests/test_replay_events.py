"""`manage.py replay_events`: published events in a window become pending again; nothing else moves."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from notifications.models import OutboxEvent

pytestmark = pytest.mark.django_db


def _event(key: str, *, age_hours: float, published: bool, topic: str = "uploading_data") -> OutboxEvent:
    now = timezone.now()
    return OutboxEvent.objects.create(
        topic=topic,
        key=key,
        payload={},
        created_at=now - timedelta(hours=age_hours),
        published_at=now if published else None,
        last_error="old error",
    )


def _replay(*args: str) -> str:
    out = io.StringIO()
    call_command("replay_events", *args, stdout=out)
    return out.getvalue()


def test_replay_marks_the_published_events_of_the_window_pending():
    inside = _event("new_user", age_hours=2, published=True)
    too_old = _event("new_user", age_hours=30, published=True)
    other_name = _event("user_updated", age_hours=2, published=True)
    other_topic = _event("new_user", age_hours=2, published=True, topic="AI_handler")
    since = (timezone.now() - timedelta(hours=3)).isoformat()

    assert _replay(
        "--since", since, "--name", "new_user", "--topic", "uploading_data", "--dry-run"
    ).startswith("1 published event(s) would be replayed")
    assert OutboxEvent.objects.get(id=inside.id).published_at is not None  # a dry run changes nothing

    assert _replay("--since", since, "--name", "new_user", "--topic", "uploading_data").startswith(
        "1 event(s) pending again"
    )
    inside.refresh_from_db()
    assert (inside.published_at, inside.last_error) == (None, "")
    for untouched in (too_old, other_name, other_topic):
        untouched.refresh_from_db()
        assert untouched.published_at is not None


def test_until_bounds_the_window():
    older = _event("new_user", age_hours=5, published=True)
    newer = _event("new_user", age_hours=1, published=True)
    now = timezone.now()
    _replay(
        "--since", (now - timedelta(hours=6)).isoformat(), "--until", (now - timedelta(hours=2)).isoformat()
    )
    older.refresh_from_db()
    newer.refresh_from_db()
    assert older.published_at is None
    assert newer.published_at is not None


@pytest.mark.parametrize("since", ["yesterday", "2026-11-30T08:00:00"])
def test_a_time_without_its_zone_is_refused(since):
    with pytest.raises(CommandError, match="ISO 8601 time with its zone"):
        _replay("--since", since)
