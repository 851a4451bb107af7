"""Notification email: Django's email framework, sent by a task after commit, text and HTML
templates, only for kinds the user keeps on; sent once; SMTP trouble retried."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend

from accounts.tests.factories import UserFactory
from notifications import services, tasks
from notifications.models import Kind, Notification

from .helpers import notify_now

pytestmark = pytest.mark.django_db

PREFERENCES = "/api/v1/notifications/preferences"


def test_a_kind_kept_on_is_mailed_as_text_and_html(user):
    notification = notify_now(
        user_id=user.id, kind=Kind.SECURITY, title="Your password was changed", body="Line one\nline two"
    )

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "Your password was changed"
    assert message.to == [user.email]
    assert "Your password was changed" in message.body
    assert "Line one\nline two" in message.body
    assert (user.full_name or user.username) in message.body
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert "<h2>Your password was changed</h2>" in html
    assert "Line one<br>line two" in html
    notification.refresh_from_db()
    assert notification.emailed_at is not None


def test_the_html_mail_escapes_what_it_shows(user):
    notify_now(user_id=user.id, kind=Kind.SECURITY, title="<script>alert(1)</script>", body="<b>x</b>")

    [(html, _)] = mail.outbox[0].alternatives
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "<b>x</b>" not in html
    assert "<b>x</b>" in mail.outbox[0].body  # the text part is plain text: shown as written


def test_nothing_is_mailed_before_the_transaction_commits(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.notification_send(user_id=user.id, kind=Kind.SECURITY, title="t")
    assert mail.outbox == []
    assert callbacks  # the mail is queued for after the commit


@pytest.mark.usefixtures("commit_per_request")
def test_a_kind_turned_off_is_not_mailed_but_still_notified(auth_client, user):
    response = auth_client.patch(PREFERENCES, {"security": {"email": False}}, format="json")
    assert response.status_code == 200

    notification = notify_now(user_id=user.id, kind=Kind.SECURITY, title="quiet")

    assert mail.outbox == []
    assert Notification.objects.filter(id=notification.id, emailed_at__isnull=True).exists()


@pytest.mark.usefixtures("commit_per_request")
def test_processing_is_off_by_default_and_can_be_turned_on(auth_client, user):
    notify_now(user_id=user.id, kind=Kind.PROCESSING, title="Your processing finished")
    assert mail.outbox == []

    auth_client.patch(PREFERENCES, {"processing": {"email": True}}, format="json")
    notify_now(user_id=user.id, kind=Kind.PROCESSING, title="Your processing finished again")
    assert [m.subject for m in mail.outbox] == ["Your processing finished again"]


def test_each_notification_is_mailed_once(user):
    notification = notify_now(user_id=user.id, kind=Kind.SECURITY, title="once")
    assert len(mail.outbox) == 1

    assert services.notification_emails_send(notification_ids=[str(notification.id)]) == 0
    assert tasks.send_notification_emails(notification_ids=[str(notification.id)]) == 0
    assert len(mail.outbox) == 1


def test_inactive_and_deleted_users_get_no_mail(user):
    from django.utils import timezone

    inactive = UserFactory(is_active=False)
    deleted = UserFactory(deleted_at=timezone.now())
    ids = [
        str(services.notification_send(user_id=someone.id, kind=Kind.SECURITY, title="t").id)
        for someone in (inactive, deleted)
    ]

    assert services.notification_emails_send(notification_ids=ids) == 0
    assert mail.outbox == []


def test_one_task_sends_a_batch_over_one_connection(user, monkeypatch):
    others = UserFactory.create_batch(3)
    ids = [
        str(services.notification_send(user_id=someone.id, kind=Kind.BROADCAST, title=f"t{i}").id)
        for i, someone in enumerate([user, *others])
    ]
    opened = []
    original_open = EmailBackend.open

    def open_(self):
        opened.append(self)
        return original_open(self)

    monkeypatch.setattr(EmailBackend, "open", open_)

    assert tasks.send_notification_emails.delay(ids).get() == 4

    assert sorted(m.subject for m in mail.outbox) == ["t0", "t1", "t2", "t3"]
    assert len(opened) == 1
    assert not Notification.objects.filter(id__in=ids, emailed_at__isnull=True).exists()


def test_smtp_trouble_is_retried_and_the_mail_goes_out_once(user, monkeypatch):
    failures = []
    original = EmailBackend.send_messages

    def flaky(self, messages):
        if len(failures) < 2:
            failures.append(1)
            raise ConnectionRefusedError("SMTP server down")
        return original(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", flaky)

    notification = notify_now(user_id=user.id, kind=Kind.SECURITY, title="retried")

    assert len(failures) == 2
    assert [m.subject for m in mail.outbox] == ["retried"]
    notification.refresh_from_db()
    assert notification.emailed_at is not None


def test_the_email_task_retries_with_backoff_on_os_errors():
    task = tasks.send_notification_emails
    assert OSError in task.autoretry_for
    assert task.retry_backoff
    assert task.max_retries >= 3
