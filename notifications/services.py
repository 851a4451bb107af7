"""Notifications to users, and events to other services (transactional outbox).

`notification_send` is the one way any part of the service tells a user something;
`event_emit` the one way it tells other services. Both write rows in the
caller's transaction; email and publishing happen after commit, elsewhere.

The lowest app: it imports no other app. It takes user ids and plain values;
the users themselves it reaches through Django's user model and the
`Notification.user` relation, never through `accounts`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.mail import get_connection
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from core.after_commit import enqueue_after_commit
from core.errors import NotFound, ServiceError
from core.ids import Id
from core.read_through import ReadThrough, short_ttl

from .mail import email_message
from .models import EMAIL_BY_DEFAULT, Broadcast, Kind, Notification, NotificationPreference, OutboxEvent

# --- events -------------------------------------------------------------------

# Values JSON gives back as they are: a payload of only these needs no round trip through the encoder.
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def event_fields(*, name: str, payload: dict[str, Any], topic: str | None = None) -> dict[str, Any]:
    """A new outbox row's column values: `event_emit` saves one, bulk writers copy many.

    The value is `payload` plus `event_id` (the row id) and `occurred_at`,
    made JSON-safe the way `DjangoJSONEncoder` writes datetimes and UUIDs.
    """
    event_id, now = uuid.uuid4(), timezone.now()
    body = {"event_id": str(event_id), "occurred_at": now.isoformat(), **payload}
    if not all(type(value) in _JSON_SCALARS for value in body.values()):
        body = json.loads(json.dumps(body, cls=DjangoJSONEncoder))  # datetimes, UUIDs, nested values
    return {
        "id": event_id,
        "topic": topic or settings.KAFKA_TOPIC_DATA,
        "key": name,
        "payload": body,
        "created_at": now,
    }


def event_emit(*, name: str, payload: dict[str, Any], topic: str | None = None) -> OutboxEvent:
    """Store an event in the current transaction: one INSERT, no network call."""
    event = OutboxEvent(**event_fields(name=name, payload=payload, topic=topic))
    event.save(force_insert=True)
    outbox_relay_after_commit()
    return event


def outbox_relay_after_commit() -> None:
    """With a Celery broker, queue the outbox relay once per transaction, after commit.

    In the embedded default the periodic relay picks the rows up: publishing
    never runs in the request that emitted.
    """
    enqueue_after_commit("notifications.tasks.publish_outbox", once=True, background_only=True)


# --- notifications --------------------------------------------------------------


def _unread_load_many(user_ids: list[str]) -> dict[str, int]:
    rows = (
        Notification.objects.filter(user_id__in=user_ids, read_at__isnull=True)
        .values("user_id")
        .annotate(count=Count("id"))
    )
    counts = {str(row["user_id"]): row["count"] for row in rows}
    return {user_id: counts.get(user_id, 0) for user_id in user_ids}


#: `notif:unread:{user_id}`: the unread count. Kept `SESSION_STATE_TTL` at most: the bound on a count
#: left stale by two changes racing their after-commit writes (a count a user would notice).
UNREAD_COUNTS: ReadThrough[int] = ReadThrough(
    "notif:unread",
    load=lambda user_id: Notification.objects.filter(user_id=user_id, read_at__isnull=True).count(),
    load_many=_unread_load_many,
    ttl=short_ttl,
    valid=lambda cached: isinstance(cached, int),
)


def unread_counts_refresh(user_ids: Iterable[Id]) -> None:
    """After commit, count these users' unread notifications again into the cache (one query for all)."""
    UNREAD_COUNTS.write_after_commit(*user_ids)


def unread_count(*, user_id: Id) -> int:
    """The user's unread count; cached, so polling it costs no query when warm (one cache round trip)."""
    return UNREAD_COUNTS.get(user_id) or 0


def notification_email_wanted(*, user_id: Id, kind: str) -> bool:
    choice = (
        NotificationPreference.objects.filter(user_id=user_id, kind=kind)
        .values_list("email", flat=True)
        .first()
    )
    return EMAIL_BY_DEFAULT.get(Kind(kind), False) if choice is None else choice


def notification_send(
    *,
    user_id: Id,
    kind: str,
    title: str,
    body: str = "",
    data: dict[str, Any] | None = None,
    mail: bool = True,
) -> Notification:
    """Tell a user something: an in-app notification, emailed too if they keep the kind on.

    `mail=False`: in-app only, for a caller that mails its own message whatever the preference
    (the notice to an address an email change is leaving, say).
    """
    notification = Notification.objects.create(
        user_id=user_id, kind=kind, title=title[:200], body=body, data=data or {}
    )
    unread_counts_refresh([user_id])
    if mail and notification_email_wanted(user_id=user_id, kind=kind):
        enqueue_after_commit("notifications.tasks.send_notification_emails", [str(notification.id)])
    return notification


def _own(user_id: Id, notification_id: Id) -> Notification:
    notification = Notification.objects.filter(id=notification_id, user_id=user_id).first()
    if notification is None:
        raise NotFound("Notification not found.")
    return notification


@transaction.atomic
def notification_read(*, user_id: Id, notification_id: Id) -> Notification:
    notification = _own(user_id, notification_id)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
        unread_counts_refresh([user_id])
    return notification


@transaction.atomic
def notifications_read_all(*, user_id: Id) -> int:
    count = Notification.objects.filter(user_id=user_id, read_at__isnull=True).update(read_at=timezone.now())
    unread_counts_refresh([user_id])
    return count


@transaction.atomic
def notification_delete(*, user_id: Id, notification_id: Id) -> None:
    _own(user_id, notification_id).delete()
    unread_counts_refresh([user_id])


def preferences_get(*, user_id: Id) -> dict[str, dict[str, bool]]:
    chosen = dict(NotificationPreference.objects.filter(user_id=user_id).values_list("kind", "email"))
    return {kind.value: {"email": chosen.get(kind.value, EMAIL_BY_DEFAULT[kind])} for kind in Kind}


@transaction.atomic
def preferences_update(*, user_id: Id, changes: dict[str, bool]) -> dict[str, dict[str, bool]]:
    for kind, email in changes.items():
        NotificationPreference.objects.update_or_create(user_id=user_id, kind=kind, defaults={"email": email})
    return preferences_get(user_id=user_id)


def notification_emails_send(*, notification_ids: list[str]) -> int:
    """Send the mails of these notifications (text and HTML) over one connection; once each."""
    notifications = list(
        Notification.objects.filter(id__in=notification_ids, emailed_at__isnull=True)
        .select_related("user")
        .filter(user__is_active=True, user__deleted_at__isnull=True)
        .exclude(user__email="")  # an account without an address (social login) is told in-app only
    )
    messages = []
    for notification in notifications:
        context = {"notification": notification, "user": notification.user}
        messages.append(
            email_message(
                template="notifications/email/notification",
                subject=notification.title,
                to=[notification.user.email],
                context=context,
            )
        )
    if not messages:
        return 0
    with get_connection() as connection:
        sent = connection.send_messages(messages) or 0
    Notification.objects.filter(id__in=[n.id for n in notifications]).update(emailed_at=timezone.now())
    return sent


# --- broadcast ---------------------------------------------------------------------

BROADCAST_BATCH = 1000


@transaction.atomic
def broadcast_create(
    *, title: str, body: str, user_ids: list[str] | None = None, role: str = "", created_by: Id | None = None
) -> Broadcast:
    """Record an announcement; a task fans it out after commit, in batches."""
    if role and not Group.objects.filter(name=role).exists():
        raise ServiceError(f"Unknown role: {role}.", code="unknown_role")
    broadcast = Broadcast.objects.create(
        title=title, body=body, role=role, user_ids=[str(u) for u in user_ids or []], created_by_id=created_by
    )
    enqueue_after_commit("notifications.tasks.broadcast_fanout", str(broadcast.id))
    return broadcast


def broadcast_fanout_batch(*, broadcast_id: Id, after_id: str | None = None) -> str | None:
    """Notify the next batch of recipients (keyset over user ids); the last id, or None when done.

    Recipients are read through Django's user model (active, not deleted, with
    the role), as `notification_emails_send` reads them through the `user` relation.
    """
    broadcast = Broadcast.objects.get(id=broadcast_id)
    users = get_user_model().objects.filter(is_active=True, deleted_at__isnull=True).order_by("id")
    if broadcast.role:
        users = users.filter(groups__name=broadcast.role)
    if broadcast.user_ids:
        users = users.filter(id__in=broadcast.user_ids)
    if after_id:
        users = users.filter(id__gt=after_id)
    batch = [str(uid) for uid in users.values_list("id", flat=True)[:BROADCAST_BATCH]]
    if not batch:
        Broadcast.objects.filter(id=broadcast_id).update(finished_at=timezone.now())
        return None
    with transaction.atomic():
        # ignore_conflicts + the (user, broadcast) unique index: a retried batch adds nobody twice.
        Notification.objects.bulk_create(
            [
                Notification(
                    user_id=uid,
                    kind=Kind.BROADCAST,
                    title=broadcast.title,
                    body=broadcast.body,
                    data={"broadcast_id": str(broadcast.id)},
                    broadcast_id=broadcast.id,
                )
                for uid in batch
            ],
            ignore_conflicts=True,
        )
        opted_out = NotificationPreference.objects.filter(
            user_id__in=batch, kind=Kind.BROADCAST, email=False
        ).values("user_id")
        to_email = [
            str(pk)
            for pk in Notification.objects.filter(
                broadcast_id=broadcast.id, user_id__in=batch, emailed_at__isnull=True
            )
            .exclude(user_id__in=opted_out)
            .values_list("id", flat=True)
        ]
        Broadcast.objects.filter(id=broadcast_id).update(
            recipients=Notification.objects.filter(broadcast_id=broadcast.id).count()
        )
        unread_counts_refresh(batch)
        if to_email:
            enqueue_after_commit("notifications.tasks.send_notification_emails", to_email)
    return batch[-1]
