"""What the document and processing tests share: a second user's client, events, cache TTLs."""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache

from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD, bearer_for
from notifications.models import OutboxEvent


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
