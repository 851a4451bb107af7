"""What the document and processing tests share: a second user's client, events, cache TTLs, a
processing and the result messages the AI handler sends for it."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from django.core.cache import cache

from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD, bearer_for
from notifications.models import OutboxEvent
from profiles.models import Processing, Requirements, Resume


def client_of(user: Any) -> Any:
    return bearer_for(user)


def other_client() -> Any:
    return client_of(UserFactory(password=PASSWORD))


def events(name: str) -> list[dict[str, Any]]:
    return [e.payload for e in OutboxEvent.objects.filter(key=name).order_by("created_at")]


def ttl(key: str) -> float:
    """Seconds the cache keeps `key`, on Redis or on the in-process cache."""
    if hasattr(cache, "ttl"):
        return float(cache.ttl(key))
    return cache._expire_info[cache.make_key(key)] - time.time()


#: JSON nested 100,000 deep: it would take the parser's recursion down with it.
POISON_PILL = b"[" * 100_000 + b"]" * 100_000


def processing_of(user: Any) -> Processing:
    """A queued processing of `user`, on a resume and requirements of theirs."""
    return Processing.objects.create(
        user=user,
        resume=Resume.objects.create(user=user, text="Python"),
        requirements=Requirements.objects.create(user=user, text="Needs Python"),
    )


def result_message(processing: Processing, **fields: Any) -> bytes:
    """A `processing_result` for `processing` as the AI handler sends it; `fields` change or add to it."""
    body = {
        "event_id": str(uuid.uuid4()),
        "processing_id": str(processing.id),
        "status": "done",
        "result": {"verdict": "a match"},
        "score": 80,
        **fields,
    }
    return json.dumps(body).encode()
