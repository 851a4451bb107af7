"""This app's contributions to `/health/ready` and `/metrics`: the outbox keeps up (`events`), and
its backlog gauges. Registered from `NotificationsConfig.ready()` (core imports no app)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.health import OK, Lagging

from .models import OutboxEvent

logger = logging.getLogger(__name__)


def outbox_keeps_up() -> str:
    """The outbox keeps up: its oldest pending event is younger than READY_MAX_EVENT_LAG_SECONDS."""
    oldest = OutboxEvent.objects.filter(published_at__isnull=True).aggregate(oldest=Min("created_at"))[
        "oldest"
    ]
    if oldest is not None:
        age = (timezone.now() - oldest).total_seconds()
        if age > settings.READY_MAX_EVENT_LAG_SECONDS:
            raise Lagging(
                f"oldest pending event is {age:.0f} s old (limit {settings.READY_MAX_EVENT_LAG_SECONDS} s)"
            )
    return OK


class OutboxCollector(Collector):
    """The outbox backlog and the age of its oldest pending event, read when scraped."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            row = OutboxEvent.objects.filter(published_at__isnull=True).aggregate(
                pending=Count("id"), oldest=Min("created_at")
            )
        except DatabaseError as exc:  # the rest of the page is still worth serving
            logger.warning("metrics: outbox gauges not read: %s", exc)
            return
        oldest = row["oldest"]
        age = max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0
        yield GaugeMetricFamily(
            "user_service_outbox_backlog", "Events stored and not yet published.", value=row["pending"]
        )
        yield GaugeMetricFamily(
            "user_service_outbox_oldest_pending_age_seconds",
            "Age of the oldest unpublished event (0 when none is pending).",
            value=age,
        )
