"""An account's life: soft delete, restore, purge, data export, and the events it emits.

API.md: "Users" (DELETE /users/me, /users/me/export, POST /users/{id}/restore),
"Accounts and tokens" (/auth/restore), "Events (Kafka)".
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import AuditEvent, AuthSession, User
from accounts.tasks import purge_deleted_accounts, purge_old_records
from accounts.tests.factories import UserFactory
from accounts.tests.support import USER_FIELDS, bearer
from notifications.models import OutboxEvent

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
RESTORE = "/api/v1/auth/restore"
ME = "/api/v1/users/me"
EXPORT = "/api/v1/users/me/export"
USERS = "/api/v1/users"
STRONG = "correct horse battery staple"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


def post(path: str, data: dict | None = None, **extra):
    return APIClient().post(path, data or {}, format="json", **extra)


def failed_login(password: str):
    response = post(LOGIN, {"username": "nobody-at-all", "password": password})
    assert response.status_code == 401
    return response


def events(name: str, user_id) -> list[OutboxEvent]:
    return [e for e in OutboxEvent.objects.filter(key=name) if e.payload.get("user_id") == str(user_id)]


def delete_me(client: APIClient, password: str):
    return client.delete(ME, {"password": password}, format="json")


def age_deletion(user: User, days: float) -> None:
    User.objects.filter(id=user.id).update(deleted_at=timezone.now() - timedelta(days=days))


# --- soft delete -------------------------------------------------------------------------


def test_delete_me_soft_deletes_and_emits_user_deleted(auth_client, user, password):
    response = delete_me(auth_client, password)

    assert response.status_code == 204
    assert response.content == b""
    row = User.objects.get(id=user.id)
    assert row.deleted_at is not None
    assert not row.is_active
    (event,) = events("user_deleted", user.id)
    assert event.payload["user_id"] == str(user.id)
    assert event.payload["event_id"] == str(event.id)
    assert event.payload["occurred_at"]
    # DjangoJSONEncoder keeps milliseconds.
    assert abs(datetime.fromisoformat(event.payload["deleted_at"]) - row.deleted_at) < timedelta(
        milliseconds=1
    )
    assert auth_client.get(ME).status_code == 401


def test_delete_me_with_a_wrong_password_changes_nothing_and_emits_nothing(auth_client, user):
    response = delete_me(auth_client, "not the password")

    assert response.status_code == 400
    assert list(response.json()) == ["password"]
    assert User.objects.get(id=user.id).deleted_at is None
    assert not OutboxEvent.objects.filter(key="user_deleted").exists()
    assert auth_client.get(ME).status_code == 200


# --- restore by the owner ------------------------------------------------------------------


def test_restore_within_the_window_brings_the_account_back(auth_client, user, password):
    old_access = auth_client.tokens["access"]
    assert delete_me(auth_client, password).status_code == 204
    age_deletion(user, 29)

    response = post(RESTORE, {"username": user.username, "password": password})

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["id"] == str(user.id)
    assert body["is_active"] is True
    assert body["roles"] == ["user"]
    row = User.objects.get(id=user.id)
    assert (row.is_active, row.deleted_at) == (True, None)
    (event,) = events("user_restored", user.id)
    assert event.payload["event_id"] == str(event.id)
    # A fresh login works; the sessions the deletion ended stay ended.
    tokens = post(LOGIN, {"username": user.username, "password": password}).json()
    assert bearer(tokens["access"]).get(ME).json()["id"] == str(user.id)
    assert bearer(old_access).get(ME).status_code == 401


def test_restore_by_email(auth_client, user, password):
    assert delete_me(auth_client, password).status_code == 204

    assert post(RESTORE, {"username": user.email.upper(), "password": password}).status_code == 200
    assert User.objects.get(id=user.id).deleted_at is None


def test_restore_after_the_window_is_the_login_401(auth_client, user, password):
    failure = failed_login(password)
    assert delete_me(auth_client, password).status_code == 204
    age_deletion(user, 31)

    response = post(RESTORE, {"username": user.username, "password": password})

    assert (response.status_code, response.json()) == (401, failure.json())
    assert User.objects.get(id=user.id).deleted_at is not None
    assert not OutboxEvent.objects.filter(key="user_restored").exists()


def test_the_window_follows_account_restore_days(settings, auth_client, user, password):
    settings.ACCOUNT_RESTORE_DAYS = 2
    assert delete_me(auth_client, password).status_code == 204
    age_deletion(user, 3)

    assert post(RESTORE, {"username": user.username, "password": password}).status_code == 401


def test_restore_with_a_wrong_password_is_the_login_401(auth_client, user, password):
    failure = failed_login(password)
    assert delete_me(auth_client, password).status_code == 204

    response = post(RESTORE, {"username": user.username, "password": password + "x"})

    assert (response.status_code, response.json()) == (401, failure.json())
    assert User.objects.get(id=user.id).deleted_at is not None


def test_restore_of_an_account_that_is_not_deleted_is_the_login_401(user, password):
    failure = failed_login(password)

    response = post(RESTORE, {"username": user.username, "password": password})

    assert (response.status_code, response.json()) == (401, failure.json())
    assert not OutboxEvent.objects.filter(key="user_restored").exists()


def test_restore_of_an_unknown_name_is_the_login_401(password):
    failure = failed_login(password)

    response = post(RESTORE, {"username": "never-existed", "password": password})

    assert (response.status_code, response.json()) == (401, failure.json())


def test_restore_does_not_reactivate_a_deactivated_not_deleted_account(user, password):
    User.objects.filter(id=user.id).update(is_active=False)
    failure = failed_login(password)

    response = post(RESTORE, {"username": user.username, "password": password})

    assert (response.status_code, response.json()) == (401, failure.json())
    assert User.objects.get(id=user.id).is_active is False


# --- restore by an administrator --------------------------------------------------------------


def test_admin_restores_a_deleted_user(admin_client, auth_client, user, password):
    assert delete_me(auth_client, password).status_code == 204

    response = admin_client.post(f"{USERS}/{user.id}/restore")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == str(user.id)
    assert body["is_active"] is True
    assert body["deleted_at"] is None
    assert User.objects.get(id=user.id).deleted_at is None
    assert len(events("user_restored", user.id)) == 1
    assert post(LOGIN, {"username": user.username, "password": password}).status_code == 200


def test_admin_restore_refuses_outside_the_window_and_for_a_live_user(admin_client, user):
    live = admin_client.post(f"{USERS}/{user.id}/restore")
    assert live.status_code == 400
    assert live.json()["code"] == "not_deleted"

    User.objects.filter(id=user.id).update(is_active=False, deleted_at=timezone.now() - timedelta(days=31))
    late = admin_client.post(f"{USERS}/{user.id}/restore")
    assert late.status_code == 400
    assert late.json()["code"] == "restore_expired"
    assert User.objects.get(id=user.id).deleted_at is not None


def test_admin_restore_is_forbidden_to_others(auth_client, password):
    victim = UserFactory(password=password, is_active=False, deleted_at=timezone.now())

    response = auth_client.post(f"{USERS}/{victim.id}/restore")

    assert response.status_code == 403
    assert set(response.json()) == {"detail", "code"}
    assert User.objects.get(id=victim.id).deleted_at is not None
    assert APIClient().post(f"{USERS}/{victim.id}/restore").status_code == 401


# --- purge ----------------------------------------------------------------------------------------


def test_purge_removes_only_accounts_deleted_longer_than_the_window(password, login):
    expired = UserFactory(password=password)
    login(expired)
    recent = UserFactory(password=password)
    alive = UserFactory(password=password)
    User.objects.filter(id=expired.id).update(is_active=False, deleted_at=timezone.now() - timedelta(days=31))
    User.objects.filter(id=recent.id).update(is_active=False, deleted_at=timezone.now() - timedelta(days=29))

    result = purge_deleted_accounts.apply()

    assert result.get() == 1
    assert set(User.objects.values_list("id", flat=True)) == {recent.id, alive.id}
    assert not AuthSession.objects.filter(user_id=expired.id).exists()
    purged = AuditEvent.objects.get(kind=AuditEvent.Kind.PURGED)
    assert purged.detail == {"detail_user_id": str(expired.id)}
    assert services.users_purge_deleted() == 0


def test_purge_old_records_drops_only_audit_rows_past_the_retention(settings, user):
    settings.AUDIT_RETENTION_DAYS = 180
    now = timezone.now()
    old = AuditEvent.objects.create(
        kind=AuditEvent.Kind.LOGIN, user=user, created_at=now - timedelta(days=181)
    )
    kept = AuditEvent.objects.create(
        kind=AuditEvent.Kind.LOGIN, user=user, created_at=now - timedelta(days=179)
    )
    fresh = AuditEvent.objects.create(kind=AuditEvent.Kind.LOGOUT, user=user)

    result = purge_old_records.apply().get()

    assert result["audit_events"] == 1
    remaining = set(AuditEvent.objects.values_list("id", flat=True))
    assert old.id not in remaining
    assert {kept.id, fresh.id} <= remaining


# --- export ------------------------------------------------------------------------------------------


def test_export_has_everything_and_no_secret(auth_client, user, password, login):
    other = UserFactory(password=password)
    other_tokens = login(other)
    second = login(user, HTTP_USER_AGENT="exporter/2.0")
    bearer(second["access"]).post("/api/v1/auth/logout")

    response = auth_client.get(EXPORT)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    raw = response.content.decode()
    data = response.json()
    assert {"profile", "roles", "sessions", "security_events"} <= set(data)
    profile = data["profile"]
    assert profile["id"] == str(user.id)
    assert (profile["username"], profile["email"], profile["full_name"]) == (
        user.username,
        user.email,
        user.full_name,
    )
    assert data["roles"] == ["user"]
    mine = set(AuthSession.objects.filter(user=user).values_list("id", flat=True))
    assert {s["id"] for s in data["sessions"]} == {str(sid) for sid in mine}
    assert any(s["user_agent"] == "exporter/2.0" and s["revoked_at"] for s in data["sessions"])
    kinds = {e["kind"] for e in data["security_events"]}
    assert {"login", "logout"} <= kinds
    # Nothing secret, and nothing of anyone else.
    row = User.objects.get(id=user.id)
    assert row.password
    assert row.password not in raw
    assert "refresh_token_hash" not in raw
    assert '"password"' not in raw
    for session_hash in AuthSession.objects.values_list("refresh_token_hash", flat=True):
        assert session_hash not in raw
    for token in (*auth_client.tokens.values(), *second.values(), *other_tokens.values()):
        if isinstance(token, str) and len(token) > 40:
            assert token not in raw
    assert other.username not in raw
    assert str(other.id) not in raw


def test_export_needs_a_token():
    assert APIClient().get(EXPORT).status_code == 401


# --- events ---------------------------------------------------------------------------------------------


def test_registration_stores_new_user(api_client):
    response = api_client.post(
        REGISTER,
        {"username": "newbie", "email": "Newbie@Example.com", "password": STRONG, "full_name": "New Bie"},
        format="json",
    )

    assert response.status_code == 201
    user = User.objects.get(username="newbie")
    (event,) = OutboxEvent.objects.filter(key="new_user")
    assert event.topic == "uploading_data"
    payload = event.payload
    assert set(payload) == {
        "event_id",
        "occurred_at",
        "user_id",
        "username",
        "full_name",
        "email",
        "email_verified",
        "created_at",
    }
    assert payload["event_id"] == str(event.id)
    assert payload["user_id"] == str(user.id) == response.json()["id"]
    assert (payload["username"], payload["full_name"], payload["email"]) == (
        "newbie",
        "New Bie",
        "newbie@example.com",
    )
    assert datetime.fromisoformat(payload["created_at"]) == user.created_at
    assert datetime.fromisoformat(payload["occurred_at"]).tzinfo is not None
    assert STRONG not in json.dumps(payload)


@pytest.mark.parametrize(
    "data",
    [
        {"username": "TAKEN", "email": "fresh@example.com", "password": STRONG},
        {"username": "fresh", "email": "TAKEN@example.com", "password": STRONG},
        {"username": "fresh", "email": "fresh@example.com", "password": "short"},
    ],
    ids=["username taken", "email taken", "weak password"],
)
def test_a_refused_registration_stores_nothing(api_client, data, password):
    UserFactory(username="taken", email="taken@example.com", password=password)
    before = OutboxEvent.objects.count(), AuditEvent.objects.count(), User.objects.count()

    response = api_client.post(REGISTER, data, format="json")

    assert response.status_code == 400
    assert (OutboxEvent.objects.count(), AuditEvent.objects.count(), User.objects.count()) == before


def test_patch_me_stores_user_updated(auth_client, user):
    response = auth_client.patch(ME, {"full_name": "Renamed Person"}, format="json")

    assert response.status_code == 200
    (event,) = events("user_updated", user.id)
    assert event.payload["full_name"] == "Renamed Person"
    assert event.payload["event_id"] == str(event.id)
    assert "username" not in event.payload  # only what changed


def test_a_patch_that_changes_nothing_stores_nothing(auth_client, user):
    assert auth_client.patch(ME, {"full_name": user.full_name}, format="json").status_code == 200

    assert not OutboxEvent.objects.filter(key="user_updated").exists()


def test_an_admin_role_change_stores_role_changed(admin_client, admin_user, user):
    response = admin_client.patch(f"{USERS}/{user.id}", {"roles": ["user", "moderator"]}, format="json")

    assert response.status_code == 200, response.content
    (event,) = events("role_changed", user.id)
    assert event.payload["roles"] == ["moderator", "user"]
    assert event.payload["previous_roles"] == ["user"]
    assert event.payload["event_id"] == str(event.id)


def test_a_rolled_back_admin_edit_stores_no_event(admin_client, user):
    """The profile change is written before the roles are checked: the failure must undo both."""
    response = admin_client.patch(
        f"{USERS}/{user.id}", {"full_name": "Should Not Stick", "roles": ["wizard"]}, format="json"
    )

    assert response.status_code == 400
    assert "roles" in response.json()
    assert User.objects.get(id=user.id).full_name == user.full_name
    assert not OutboxEvent.objects.filter(key__in=["user_updated", "role_changed"]).exists()
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.PROFILE_UPDATED).exists()


def test_restore_counts_wrong_passwords_toward_the_login_lockout(settings, user, password, auth_client):
    settings.LOGIN_MAX_ATTEMPTS = 2
    assert auth_client.delete("/api/v1/users/me", {"password": password}, format="json").status_code == 204
    restore = APIClient()
    for _ in range(2):
        wrong = restore.post(
            "/api/v1/auth/restore", {"username": user.username, "password": "not it at all"}, format="json"
        )
        assert wrong.status_code == 401
    locked = restore.post(
        "/api/v1/auth/restore", {"username": user.username, "password": password}, format="json"
    )
    assert locked.status_code == 429
    assert locked.json()["code"] == "locked_out"
    assert locked["Retry-After"].isdigit()
    user.refresh_from_db()
    assert user.deleted_at is not None
