"""Broadcast fan-out: a task per batch of recipients, each batch a keyset page of ids, the next batch
chained as a new task; so 100,000 recipients never load at once nor make one long task.

`BROADCAST_BATCH` is made 3 so that a handful of users spans several batches.
"""

from __future__ import annotations

import itertools
import math

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import UserFactory
from notifications import services
from notifications.models import Broadcast, Kind, Notification, NotificationPreference

pytestmark = pytest.mark.django_db

BATCH = 3


@pytest.fixture
def batches(monkeypatch):
    """Batches of 3; records each batch task's call: (after_id, returned last id, notifications made)."""
    monkeypatch.setattr(services, "BROADCAST_BATCH", BATCH)
    calls = []
    original = services.broadcast_fanout_batch

    def spy(*, broadcast_id, after_id=None):
        before = Notification.objects.filter(kind=Kind.BROADCAST).count()
        last = original(broadcast_id=broadcast_id, after_id=after_id)
        made = Notification.objects.filter(kind=Kind.BROADCAST).count() - before
        calls.append((after_id, last, made))
        return last

    monkeypatch.setattr(services, "broadcast_fanout_batch", spy)
    return calls


def send(django_capture_on_commit_callbacks, **kwargs) -> Broadcast:
    with django_capture_on_commit_callbacks(execute=True):
        broadcast = services.broadcast_create(
            title=kwargs.pop("title", "Hello"), body="All of you.", **kwargs
        )
    broadcast.refresh_from_db()
    return broadcast


def test_a_broadcast_to_a_role_is_fanned_out_in_chained_batches(
    batches, monkeypatch, django_capture_on_commit_callbacks
):
    from notifications import tasks

    task_class = tasks.broadcast_fanout.__class__
    original_delay = task_class.delay
    queued = []

    def delay(self, *args, **kwargs):
        queued.append(args)
        return original_delay(self, *args, **kwargs)

    monkeypatch.setattr(task_class, "delay", delay)
    targets = UserFactory.create_batch(8, roles=["user"])
    UserFactory(roles=["admin"])  # not in the role
    UserFactory(roles=["user"], is_active=False)
    UserFactory(roles=["user"], deleted_at=timezone.now())
    expected = set(
        User.objects.filter(groups__name="user", is_active=True, deleted_at__isnull=True).values_list(
            "id", flat=True
        )
    )
    assert {u.id for u in targets} <= expected

    with CaptureQueriesContext(connection) as queries:
        broadcast = send(django_capture_on_commit_callbacks, role="user")

    notified = list(Notification.objects.filter(kind=Kind.BROADCAST).values_list("user_id", flat=True))
    assert sorted(notified) == sorted(expected)  # everyone once, nobody else
    assert broadcast.recipients == len(expected)
    assert broadcast.finished_at is not None

    # One task per batch of at most 3, then one that finds nothing and finishes.
    assert len(batches) == math.ceil(len(expected) / BATCH) + 1
    assert [made for _, _, made in batches[:-1]] == [BATCH] * (len(expected) // BATCH) + (
        [len(expected) % BATCH] if len(expected) % BATCH else []
    )
    assert batches[-1][1:] == (None, 0)
    # Chained: each batch starts after the last id of the one before.
    assert batches[0][0] is None
    for (_, last, _), (after, _, _) in itertools.pairwise(batches):
        assert after == last
    # ... each batch a task of its own, queued by the one before.
    assert queued == [(str(broadcast.id),)] + [(str(broadcast.id), last) for _, last, _ in batches[:-1]]
    # Recipients are read a page at a time, never all at once.
    recipient_reads = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "accounts_user"."id"')
    ]
    assert recipient_reads
    assert all(f"LIMIT {BATCH}" in sql for sql in recipient_reads), recipient_reads


def test_a_broadcast_to_user_ids_reaches_those_active_users(batches, django_capture_on_commit_callbacks):
    chosen = UserFactory.create_batch(4)
    gone = UserFactory(is_active=False)
    UserFactory.create_batch(2)

    broadcast = send(django_capture_on_commit_callbacks, user_ids=[u.id for u in [*chosen, gone]])

    notified = set(Notification.objects.filter(kind=Kind.BROADCAST).values_list("user_id", flat=True))
    assert notified == {u.id for u in chosen}
    assert broadcast.recipients == 4
    assert set(broadcast.user_ids) == {str(u.id) for u in [*chosen, gone]}
    assert len(batches) == 3


def test_a_broadcast_to_no_one_in_particular_reaches_everyone_active(django_capture_on_commit_callbacks):
    UserFactory.create_batch(3)
    UserFactory(is_active=False)
    active = User.objects.filter(is_active=True, deleted_at__isnull=True).count()

    broadcast = send(django_capture_on_commit_callbacks)

    assert Notification.objects.filter(kind=Kind.BROADCAST).count() == active == broadcast.recipients


def test_a_broadcast_to_an_empty_role_finishes_with_no_recipients(django_capture_on_commit_callbacks):
    from django.contrib.auth.models import Group

    Group.objects.create(name="nobody-has-this")

    broadcast = send(django_capture_on_commit_callbacks, role="nobody-has-this")

    assert broadcast.recipients == 0
    assert broadcast.finished_at is not None
    assert not Notification.objects.filter(kind=Kind.BROADCAST).exists()


def test_nothing_is_fanned_out_until_the_broadcast_commits(django_capture_on_commit_callbacks):
    UserFactory.create_batch(2)
    with django_capture_on_commit_callbacks(execute=False):
        broadcast = services.broadcast_create(title="later", body="")
    assert not Notification.objects.filter(kind=Kind.BROADCAST).exists()
    assert Broadcast.objects.get(id=broadcast.id).finished_at is None


def test_a_broadcast_mails_those_who_keep_it_on_and_updates_unread_counts(
    batches, django_capture_on_commit_callbacks
):
    users = UserFactory.create_batch(5, roles=["admin"])
    quiet = users[1]
    NotificationPreference.objects.create(user=quiet, kind=Kind.BROADCAST, email=False)
    for someone in users:
        assert services.unread_count(user_id=someone.id) == 0  # warm the cached counts

    send(django_capture_on_commit_callbacks, title="News", role="admin")

    recipients = set(User.objects.filter(groups__name="admin").values_list("email", flat=True))
    mailed = [address for message in mail.outbox for address in message.to]
    assert sorted(mailed) == sorted(recipients - {quiet.email})
    assert {m.subject for m in mail.outbox} == {"News"}
    for someone in users:
        assert services.unread_count(user_id=someone.id) == 1
    mailed_ids = Notification.objects.filter(kind=Kind.BROADCAST, emailed_at__isnull=False)
    assert not mailed_ids.filter(user=quiet).exists()


def test_a_retried_batch_notifies_nobody_twice(batches, monkeypatch, django_capture_on_commit_callbacks):
    """The fan-out task retries on any error. When the batch is stored but queueing the next one
    fails (broker hiccup; or the worker dies before its late ack), the retry runs the same batch
    again: its recipients must not get the broadcast twice."""
    from notifications import tasks

    users = UserFactory.create_batch(5, roles=["admin"])
    task_class = tasks.broadcast_fanout.__class__
    original_delay = task_class.delay
    failures = []

    def delay(self, *args, **kwargs):
        if len(args) == 2 and not failures:  # queueing the second batch fails once
            failures.append(args)
            raise ConnectionError("broker unreachable")
        return original_delay(self, *args, **kwargs)

    monkeypatch.setattr(task_class, "delay", delay)

    broadcast = send(django_capture_on_commit_callbacks, role="admin")

    assert failures
    per_user = {}
    for user_id in Notification.objects.filter(kind=Kind.BROADCAST).values_list("user_id", flat=True):
        per_user[user_id] = per_user.get(user_id, 0) + 1
    assert per_user == dict.fromkeys((u.id for u in users), 1)
    assert broadcast.recipients == len(users)
