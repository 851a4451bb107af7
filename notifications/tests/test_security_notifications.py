"""The services that cause notifications send them (through `notification_send`): welcome after registration,
and security notices for a password change or reset, a sign-in from a new device, a spent refresh
token presented again, and a lockout."""

from __future__ import annotations

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.test import APIClient

from accounts.tests.support import PASSWORD
from notifications.models import Kind, Notification

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]

API = "/api/v1"
NEW_PASSWORD = "another long pass phrase"


def security_events(user) -> list[str]:
    return list(
        Notification.objects.filter(user=user, kind=Kind.SECURITY)
        .order_by("created_at")
        .values_list("data__event", flat=True)
    )


def test_registration_sends_a_welcome_notification_and_mail():
    response = APIClient().post(
        f"{API}/auth/register",
        {"username": "newcomer", "email": "newcomer@example.com", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 201, response.content

    notification = Notification.objects.get(user_id=response.json()["id"])
    assert notification.kind == Kind.WELCOME
    assert "newcomer" in notification.body
    # The welcome mail, and the link that verifies the address (issue 24).
    assert sorted(m.subject for m in mail.outbox) == sorted(
        [notification.title, "Confirm your email address"]
    )
    assert {tuple(m.to) for m in mail.outbox} == {("newcomer@example.com",)}


def test_a_password_change_sends_a_security_notification(auth_client, user, password):
    response = auth_client.post(
        f"{API}/auth/password/change", {"old_password": password, "new_password": NEW_PASSWORD}, format="json"
    )
    assert response.status_code == 204, response.content

    assert security_events(user) == ["password_changed"]
    assert any(m.to == [user.email] for m in mail.outbox)


def test_a_refused_password_change_sends_nothing(auth_client, user):
    response = auth_client.post(
        f"{API}/auth/password/change", {"old_password": "wrong", "new_password": NEW_PASSWORD}, format="json"
    )
    assert response.status_code == 400
    assert security_events(user) == []


def test_a_password_reset_sends_a_security_notification(user):
    uid = urlsafe_base64_encode(force_bytes(str(user.id)))
    token = default_token_generator.make_token(user)

    response = APIClient().post(
        f"{API}/auth/password/reset/confirm",
        {"uid": uid, "token": token, "new_password": NEW_PASSWORD},
        format="json",
    )
    assert response.status_code == 204, response.content

    assert security_events(user) == ["password_changed"]


def test_a_sign_in_from_a_new_device_is_notified_and_a_known_one_is_not(user, login):
    login(user, HTTP_USER_AGENT="Firefox on the laptop")  # the first session: nothing to compare with
    login(user, HTTP_USER_AGENT="Firefox on the laptop")  # the same device again
    assert security_events(user) == []

    tokens = login(user, HTTP_USER_AGENT="Safari on a phone", REMOTE_ADDR="203.0.113.9")

    notification = Notification.objects.get(user=user, kind=Kind.SECURITY)
    assert notification.data["event"] == "new_device"
    assert notification.data["session_id"] == tokens["session_id"]
    assert "Safari on a phone" in notification.body
    login(user, HTTP_USER_AGENT="Safari on a phone")
    assert security_events(user) == ["new_device"]


def test_a_spent_refresh_token_presented_again_is_notified(user, login):
    tokens = login(user)
    client = APIClient()
    assert (
        client.post(f"{API}/auth/refresh", {"refresh": tokens["refresh"]}, format="json").status_code == 200
    )

    again = client.post(f"{API}/auth/refresh", {"refresh": tokens["refresh"]}, format="json")

    assert again.status_code == 401
    notification = Notification.objects.get(user=user, kind=Kind.SECURITY)
    assert notification.data == {"event": "token_reuse", "session_id": tokens["session_id"]}
    assert any(m.subject == notification.title for m in mail.outbox)
    # The session is revoked already: more replays do not notify again.
    client.post(f"{API}/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert security_events(user) == ["token_reuse"]


def test_a_lockout_is_notified_once(user, settings):
    settings.LOGIN_MAX_ATTEMPTS = 2
    client = APIClient()
    for _ in range(2):
        response = client.post(
            f"{API}/auth/login", {"username": user.username, "password": "nope"}, format="json"
        )
        assert response.status_code == 401
    assert security_events(user) == ["lockout"]

    for _ in range(2):  # refused while locked: no more notices
        response = client.post(
            f"{API}/auth/login", {"username": user.username, "password": "nope"}, format="json"
        )
        assert response.status_code == 429
    assert security_events(user) == ["lockout"]
    assert any(m.to == [user.email] for m in mail.outbox)


def test_a_failed_login_below_the_limit_notifies_nothing(user, settings):
    settings.LOGIN_MAX_ATTEMPTS = 3
    client = APIClient()
    client.post(f"{API}/auth/login", {"username": user.username, "password": "nope"}, format="json")
    assert security_events(user) == []
