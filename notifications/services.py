"""Events for other services (transactional outbox)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from .models import OutboxEvent


def event_emit(*, name: str, payload: dict[str, Any], topic: str | None = None) -> OutboxEvent:
    """Store an event in the current transaction; the relay publishes it after commit.

    Adds `event_id` and `occurred_at` to the payload. One INSERT, no network call.
    """
    event = OutboxEvent(topic=topic or settings.KAFKA_TOPIC_DATA, key=name)
    now = timezone.now()
    body = {"event_id": str(event.id), "occurred_at": now.isoformat(), **payload}
    event.payload = json.loads(json.dumps(body, cls=DjangoJSONEncoder))
    event.created_at = now
    event.save(force_insert=True)
    return event
