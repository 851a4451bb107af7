"""The Django admin's own forms (add user, change user, change password) go through the services.

Each test posts the admin's form with the Django test client, then checks what the
API's door would have left: the outbox row, the audit row with the administrator as
actor, the cache, the sessions.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from accounts.models import AuditEvent, AuthSession, User
from accounts.services import AuditKind, new_user_payload
from accounts.tests.support import PASSWORD, bearer, login_tokens
from notifications.models import Notification, OutboxEvent

ME = "/api/v1/users/me"
NEW_PASSWORD = "an entirely new pass phrase 7"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


@pytest.fixture
def staff(client: Any, admin_user: User) -> Any:
    """The Django test client, logged in to the admin as a member of the `admin` role."""
    client.force_login(admin_user)
    return client


def change_form(user: User, **changes: Any) -> dict[str, Any]:
    """What the change page posts for `user`, with `changes` applied (no session inline rows)."""
    sessions = AuthSession.objects.filter(user=user).count()
    data: dict[str, Any] = {
        "username": user.username,
        "email": user.email,
        "full_name": user.full_name,
        "groups": [g.pk for g in user.groups.all()],
        "is_active": "on",
        "auth_sessions-TOTAL_FORMS": "0",
        "auth_sessions-INITIAL_FORMS": "0",
        "auth_sessions-MIN_NUM_FORMS": "0",
        "auth_sessions-MAX_NUM_FORMS": "1000",
        # The linked identities inline (social login): none here.
        "social_auth-TOTAL_FORMS": "0",
        "social_auth-INITIAL_FORMS": "0",
        "social_auth-MIN_NUM_FORMS": "0",
        "social_auth-MAX_NUM_FORMS": "1000",
    }
    assert sessions >= 0
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def audit_rows(user: User, kind: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(user=user, kind=kind))


def test_add_user_goes_through_user_create(staff, admin_user, django_capture_on_commit_callbacks):
    form = {
        "username": "added-in-admin",
        "email": "Added@Example.com",
        "full_name": "Added Person",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post("/admin/accounts/user/add/", form)

    assert response.status_code == 302, response.content.decode()[:3000]
    user = User.objects.get(username="added-in-admin")
    assert response["Location"] == f"/admin/accounts/user/{user.pk}/change/"
    assert user.email == "added@example.com"
    assert user.roles == ["user"]
    # The new_user event, exactly as user_create writes it.
    (event,) = OutboxEvent.objects.filter(key="new_user", payload__user_id=str(user.id))
    sent = {k: v for k, v in event.payload.items() if k not in {"event_id", "occurred_at"}}
    assert sent == new_user_payload(vars(user))  # the row's column values, as user_create passes them
    # Audited, with the administrator as the actor.
    (row,) = audit_rows(user, AuditKind.REGISTERED)
    assert row.actor_id == admin_user.id
    # The password set in the form logs in over the API.
    assert login_tokens(user, NEW_PASSWORD)["access"]


def test_add_user_with_a_weak_password_is_refused_by_the_form_and_creates_nothing(staff):
    form = {"username": "weak", "email": "weak@example.com", "password1": "123", "password2": "123"}
    response = staff.post("/admin/accounts/user/add/", form)

    assert response.status_code == 200  # the form again, with its error
    assert "This password is too short" in response.content.decode()
    assert not User.objects.filter(username="weak").exists()
    assert not OutboxEvent.objects.filter(key="new_user").exists()


def test_change_form_goes_through_the_update_service(
    staff, admin_user, user, django_capture_on_commit_callbacks
):
    access = login_tokens(user)["access"]
    assert bearer(access).get(ME).json()["username"] == user.username  # the cached user is warm
    old_email = user.email
    moderator = Group.objects.get(name="moderator")
    form = change_form(
        user,
        username="renamed-in-admin",
        email="moved@example.com",
        full_name="Renamed Person",
        groups=[g.pk for g in user.groups.all()] + [moderator.pk],
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"/admin/accounts/user/{user.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:3000]
    user.refresh_from_db()
    assert (user.username, user.email, user.full_name) == (
        "renamed-in-admin",
        "moved@example.com",
        "Renamed Person",
    )
    assert user.roles == ["moderator", "user"]
    # user_updated with what changed, and role_changed: the same events as the API's edit.
    (updated,) = OutboxEvent.objects.filter(key="user_updated", payload__user_id=str(user.id))
    assert {k: updated.payload[k] for k in ("username", "email", "full_name")} == {
        "username": "renamed-in-admin",
        "email": "moved@example.com",
        "full_name": "Renamed Person",
    }
    assert OutboxEvent.objects.filter(key="role_changed", payload__user_id=str(user.id)).count() == 1
    # Audited with the administrator as the actor.
    (profile,) = audit_rows(user, AuditKind.PROFILE_UPDATED)
    assert profile.actor_id == admin_user.id
    # A new address from an administrator applies at once, unverified (its link is mailed to it).
    assert sorted(profile.detail["fields"]) == [
        "email",
        "email_pending",
        "email_verified",
        "full_name",
        "username",
    ]
    (roles,) = audit_rows(user, AuditKind.ROLE_CHANGED)
    assert roles.actor_id == admin_user.id
    # The cached user was refreshed by the service: the user's own token sees the change at once.
    me = bearer(access).get(ME).json()
    assert (me["username"], me["email"], me["roles"]) == (
        "renamed-in-admin",
        "moved@example.com",
        ["moderator", "user"],
    )
    # The old address is told, as after the owner's own change.
    notice = [m for m in mail.outbox if m.to == [old_email]]
    assert [m.subject for m in notice] == ["The email address of your account was changed"]
    assert "moved@example.com" in notice[0].body


def test_change_form_that_changes_nothing_emits_nothing(staff, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"/admin/accounts/user/{user.pk}/change/", change_form(user))

    assert response.status_code == 302
    assert not OutboxEvent.objects.filter(payload__user_id=str(user.id)).exists()
    assert not AuditEvent.objects.filter(user=user).exclude(kind=AuditKind.REGISTERED).exists()


def test_change_form_deactivation_and_superuser_go_through_the_services(
    staff, admin_user, user, django_capture_on_commit_callbacks
):
    access = login_tokens(user)["access"]
    assert bearer(access).get(ME).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            f"/admin/accounts/user/{user.pk}/change/", change_form(user, is_active=None, is_superuser="on")
        )

    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.is_active, user.is_superuser, user.is_staff) == (False, True, True)
    assert bearer(access).get(ME).status_code == 401  # deactivation ended the sessions at once
    assert audit_rows(user, AuditKind.DEACTIVATED)[0].actor_id == admin_user.id
    (granted,) = audit_rows(user, AuditKind.ADMIN_ACTION)
    assert (granted.actor_id, granted.detail["action"]) == (admin_user.id, "superuser_granted")
    assert OutboxEvent.objects.filter(key="user_updated", payload__is_superuser=True).count() == 1


def test_password_form_sets_the_password_ends_every_session_audits_and_tells_the_user(
    staff, admin_user, user, django_capture_on_commit_callbacks
):
    first, second = login_tokens(user), login_tokens(user)
    for tokens in (first, second):
        assert bearer(tokens["access"]).get(ME).status_code == 200  # cached as live
    form = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"/admin/accounts/user/{user.pk}/password/", form)

    assert response.status_code == 302, response.content.decode()[:3000]
    # Every old token is refused on the very next request, refresh tokens too.
    for tokens in (first, second):
        assert bearer(tokens["access"]).get(ME).status_code == 401
        refreshed = bearer(tokens["access"]).post(
            "/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json"
        )
        assert refreshed.status_code == 401
    assert set(AuthSession.objects.filter(user=user).values_list("revoke_reason", flat=True)) == {
        "password_set"
    }
    # The new password works, the old one not.
    assert login_tokens(user, NEW_PASSWORD)["access"]
    assert (
        bearer("").post("/api/v1/auth/login", {"username": user.username, "password": PASSWORD}).status_code
        != 200
    )
    # Audited with the administrator as actor; the user is told.
    (row,) = audit_rows(user, AuditKind.PASSWORD_CHANGED)
    assert (row.actor_id, row.detail["by"]) == (admin_user.id, "administrator")
    assert Notification.objects.filter(user=user, kind="security", data__event="password_set").count() == 1


def test_password_form_can_turn_password_login_off(staff, user, django_capture_on_commit_callbacks):
    access = login_tokens(user)["access"]
    assert bearer(access).get(ME).status_code == 200
    form = {"usable_password": "false", "unset-password": "1"}
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"/admin/accounts/user/{user.pk}/password/", form)

    assert response.status_code == 302, response.content.decode()[:3000]
    user.refresh_from_db()
    assert not user.has_usable_password()
    assert bearer(access).get(ME).status_code == 401
    assert audit_rows(user, AuditKind.PASSWORD_CHANGED)[0].detail["usable"] is False
