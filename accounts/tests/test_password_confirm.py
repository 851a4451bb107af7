"""Endpoints that ask for the current password (API.md, Accounts → Rules; Users).

`POST /auth/password/change`, `DELETE /users/me` and an email change through
`PATCH /users/me` check the password as login does: a wrong one is a 400 on its
field and counts toward the same per-account lockout, a locked account gets 429
with `Retry-After` even with the right one. A stolen access token alone can
neither guess the password without limit nor move the account to another address.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from accounts.models import AuditEvent, LoginLockout, User
from accounts.services import AuditKind
from accounts.tests.support import PASSWORD, bearer_for, login_tokens, verification_link_use
from notifications.models import Notification, OutboxEvent

ME = "/api/v1/users/me"
CHANGE = "/api/v1/auth/password/change"
LOGIN = "/api/v1/auth/login"
MAX_ATTEMPTS = 3
WRONG = "definitely not the password"
NEW_PASSWORD = "an entirely new pass phrase 7"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


@pytest.fixture(autouse=True)
def _small_limits(settings: Any) -> None:
    settings.LOGIN_MAX_ATTEMPTS = MAX_ATTEMPTS
    settings.LOGIN_LOCKOUT_SECONDS = 300


# Each door: (method, path, the body with a given password, the field a wrong one is reported on).
DOORS = {
    "password change": (
        "post",
        CHANGE,
        lambda pw: {"old_password": pw, "new_password": NEW_PASSWORD},
        "old_password",
    ),
    "delete me": ("delete", ME, lambda pw: {"password": pw}, "password"),
    "email change": (
        "patch",
        ME,
        lambda pw: {"email": "elsewhere@example.com", "current_password": pw},
        "current_password",
    ),
}


def knock(client: Any, door: str, password: str) -> Any:
    method, path, body, _ = DOORS[door]
    return getattr(client, method)(path, body(password), format="json")


def failures(user: User) -> int:
    row = LoginLockout.objects.filter(key=f"user:{user.id}").first()
    return row.failures if row else 0


def assert_locked(response: Any) -> None:
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "locked_out"
    assert response["Retry-After"].isdigit()
    assert int(response["Retry-After"]) >= 1


@pytest.mark.parametrize("door", DOORS)
def test_a_wrong_current_password_is_a_400_that_counts_toward_the_lockout(user, door):
    client = bearer_for(user)

    response = knock(client, door, WRONG)

    assert response.status_code == 400, response.content
    assert response.json() == {DOORS[door][3]: ["The password is not correct."]}
    assert failures(user) == 1
    row = AuditEvent.objects.get(user=user, kind=AuditKind.LOGIN_FAILED)
    assert row.detail["reason"] == "wrong_current_password"
    user.refresh_from_db()
    assert user.email != "elsewhere@example.com"
    assert user.check_password(PASSWORD)
    assert user.deleted_at is None


@pytest.mark.parametrize("door", DOORS)
def test_guesses_with_a_stolen_token_lock_the_account_everywhere(user, api_client, door):
    client = bearer_for(user)
    for _ in range(MAX_ATTEMPTS):
        assert knock(client, door, WRONG).status_code == 400

    # Locked: the door itself refuses even the right password ...
    assert_locked(knock(client, door, PASSWORD))
    # ... and so does login: one count for every door that checks a password.
    assert_locked(api_client.post(LOGIN, {"username": user.username, "password": PASSWORD}, format="json"))
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert user.deleted_at is None
    assert user.email == f"{user.username}@example.com"


def test_failed_logins_lock_the_password_confirming_doors_too(user, api_client):
    client = bearer_for(user)
    for _ in range(MAX_ATTEMPTS):
        assert (
            api_client.post(LOGIN, {"username": user.username, "password": WRONG}, format="json").status_code
            == 401
        )

    for door in DOORS:
        assert_locked(knock(client, door, PASSWORD))


def test_the_right_password_resets_the_count(user):
    client = bearer_for(user)
    assert knock(client, "email change", WRONG).status_code == 400
    assert failures(user) == 1

    assert (
        client.patch(
            ME, {"email": "moved@example.com", "current_password": PASSWORD}, format="json"
        ).status_code
        == 200
    )

    assert failures(user) == 0


# --- the email change -------------------------------------------------------------------


def test_an_email_change_without_the_current_password_is_400_and_changes_nothing(user):
    client = bearer_for(user)

    response = client.patch(ME, {"email": "thief@example.com"}, format="json")

    assert response.status_code == 400
    assert "current_password" in response.json()
    user.refresh_from_db()
    assert user.email != "thief@example.com"
    assert not OutboxEvent.objects.filter(key="user_updated").exists()
    assert failures(user) == 0  # no guess was made


def test_the_other_profile_fields_need_no_password(user):
    client = bearer_for(user)
    response = client.patch(ME, {"full_name": "Just A Name", "username": "just-renamed"}, format="json")
    assert response.status_code == 200
    # Sending the address it already has is no change either.
    assert client.patch(ME, {"email": user.email.upper()}, format="json").status_code == 200


def test_an_email_change_tells_the_old_address_by_mail_and_the_user_in_app(user):
    client = bearer_for(user)
    old = user.email

    response = client.patch(ME, {"email": "New@Example.com", "current_password": PASSWORD}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["email"], response.json()["email_pending"]) == (old, "new@example.com")
    # Asked: the old address hears of it at once, and stays the account's until the link is used.
    (asked,) = [m for m in mail.outbox if m.to == [old] and "email address" in m.subject]
    assert asked.subject == "A change of your email address was asked"
    assert "new@example.com" in asked.body
    assert asked.alternatives  # an HTML part too
    assert not OutboxEvent.objects.filter(key="user_updated").exists()

    assert verification_link_use("new@example.com").status_code == 204

    to_old = [m for m in mail.outbox if m.to == [old] and "email address" in m.subject]
    assert len(to_old) == 2
    assert to_old[1].subject == "The email address of your account was changed"
    assert "new@example.com" in to_old[1].body
    assert old in to_old[1].body
    assert to_old[1].alternatives
    (note,) = Notification.objects.filter(user=user, data__event="email_changed")
    assert note.kind == "security"
    assert note.data == {"event": "email_changed", "email": "new@example.com", "previous_email": old}
    # The new address logs in; the event names the new address.
    assert login_tokens(User(username="new@example.com"))["access"]
    assert OutboxEvent.objects.get(key="user_updated").payload["email"] == "new@example.com"
