from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class OutboxEvent(models.Model):
    """An event for other services, stored in the transaction of the change that caused it.

    The relay publishes pending rows to Kafka (`published_at` set); they are
    deleted after `OUTBOX_RETENTION_DAYS`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, help_text="Also `event_id`.")
    topic = models.CharField(max_length=255)
    key = models.CharField(max_length=255, help_text="The event name; the Kafka message key.")
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="outbox_pending_idx",
                condition=models.Q(published_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.id}"
