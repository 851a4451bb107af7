from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Kind(models.TextChoices):
    WELCOME = "welcome", "Welcome"
    SECURITY = "security", "Security"
    ROLE_REQUEST = "role_request", "Role request decided"
    PROCESSING = "processing", "Processing finished"
    BROADCAST = "broadcast", "Announcement"


#: Whether a kind is also emailed when the user has not said otherwise.
EMAIL_BY_DEFAULT = {
    Kind.WELCOME: True,
    Kind.SECURITY: True,
    Kind.ROLE_REQUEST: True,
    Kind.PROCESSING: False,
    Kind.BROADCAST: True,
}


class Notification(models.Model):
    """A message to one user, shown in the app and, if they keep that kind on, emailed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    broadcast = models.ForeignKey(
        "Broadcast", null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A retried fan-out batch cannot notify anyone twice.
            models.UniqueConstraint(
                fields=["user", "broadcast"],
                condition=models.Q(broadcast__isnull=False),
                name="notification_once_per_broadcast",
            )
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(
                fields=["user"], name="notification_unread_idx", condition=models.Q(read_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.title}"


class NotificationPreference(models.Model):
    """A user's choice for one kind; a missing row means the kind's default."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    email = models.BooleanField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="notification_pref_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} email={self.email}"


class Broadcast(models.Model):
    """An announcement to many users, fanned out to notifications in batches by a task."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    role = models.CharField(max_length=150, blank=True, help_text="Everyone with this role, or…")
    user_ids = models.JSONField(default=list, blank=True, help_text="…these users (both empty: everyone).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    recipients = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title


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


class ProcessedEvent(models.Model):
    """An event this service consumed already: a second delivery is dropped."""

    event_id = models.CharField(max_length=255, primary_key=True)
    key = models.CharField(max_length=255)
    processed_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.event_id
