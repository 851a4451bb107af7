"""A ban is a ban (API.md, Accounts → `/auth/restore`).

`/auth/restore` undoes only a deletion the owner made themselves, within
`ACCOUNT_RESTORE_DAYS`. An account an administrator deactivated or deleted
answers restore and login with the ordinary 401, the same `detail` as any
failed login; an administrator can still restore it.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command

from accounts import services
from accounts.models import AuditEvent, User
from accounts.services import AuditKind
from accounts.tests.support import PASSWORD, bearer_for

LOGIN = "/api/v1/auth/login"
RESTORE = "/api/v1/auth/restore"
ME = "/api/v1/users/me"
USERS = "/api/v1/users"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


def attempt(api_client: Any, path: str, user: User) -> Any:
    return api_client.post(path, {"username": user.username, "password": PASSWORD}, format="json")


def assert_ordinary_401(response: Any, api_client: Any) -> None:
    """Refused exactly as a login with a made-up name is: nothing tells a ban apart."""
    unknown = api_client.post(LOGIN, {"username": "nobody-at-all", "password": PASSWORD}, format="json")
    assert response.status_code == unknown.status_code == 401
    assert response.json() == unknown.json()


def test_the_owner_restores_their_own_deletion(api_client, user):
    assert bearer_for(user).delete(ME, {"password": PASSWORD}, format="json").status_code == 204
    assert User.objects.get(id=user.id).deleted_by_owner

    assert attempt(api_client, RESTORE, user).status_code == 200
    restored = User.objects.get(id=user.id)
    assert (restored.is_active, restored.deleted_at, restored.deleted_by_owner) == (True, None, False)


def test_an_account_an_administrator_deleted_stays_deleted(api_client, admin_client, user):
    assert admin_client.delete(f"{USERS}/{user.id}").status_code == 204

    assert_ordinary_401(attempt(api_client, RESTORE, user), api_client)
    assert_ordinary_401(attempt(api_client, LOGIN, user), api_client)
    row = User.objects.get(id=user.id)
    assert row.deleted_at is not None
    assert not row.is_active


def test_an_account_an_administrator_deactivated_stays_deactivated(api_client, admin_client, user):
    assert admin_client.patch(f"{USERS}/{user.id}", {"is_active": False}, format="json").status_code == 200

    assert_ordinary_401(attempt(api_client, RESTORE, user), api_client)
    assert_ordinary_401(attempt(api_client, LOGIN, user), api_client)
    assert not User.objects.get(id=user.id).is_active


def test_an_administrator_deleting_an_owner_deleted_account_makes_it_a_ban(api_client, admin_client, user):
    assert bearer_for(user).delete(ME, {"password": PASSWORD}, format="json").status_code == 204
    assert admin_client.delete(f"{USERS}/{user.id}").status_code == 204

    assert_ordinary_401(attempt(api_client, RESTORE, user), api_client)
    assert not User.objects.get(id=user.id).deleted_by_owner


def test_an_administrator_deactivating_an_owner_deleted_account_makes_it_a_ban(
    api_client, admin_client, user
):
    assert bearer_for(user).delete(ME, {"password": PASSWORD}, format="json").status_code == 204
    assert admin_client.patch(f"{USERS}/{user.id}", {"is_active": False}, format="json").status_code == 200

    assert_ordinary_401(attempt(api_client, RESTORE, user), api_client)


def test_a_deletion_by_the_operator_command_is_an_administrators(api_client, user):
    call_command("delete_user", user.username, "--yes", stdout=io.StringIO())

    assert_ordinary_401(attempt(api_client, RESTORE, user), api_client)


def test_an_administrator_still_restores_a_banned_account_over_the_api(
    api_client, admin_client, admin_user, user
):
    assert admin_client.delete(f"{USERS}/{user.id}").status_code == 204

    response = admin_client.post(f"{USERS}/{user.id}/restore")

    assert response.status_code == 200, response.content
    assert response.json()["is_active"] is True
    assert attempt(api_client, LOGIN, user).status_code == 200
    assert AuditEvent.objects.get(user=user, kind=AuditKind.RESTORED).actor_id == admin_user.id


def test_an_administrator_still_restores_a_banned_account_in_the_django_admin(
    api_client, client, admin_user, user
):
    services.user_soft_delete(user_id=user.id, actor_id=admin_user.id)
    client.force_login(admin_user)

    response = client.post(
        "/admin/accounts/user/", {"action": "restore_users", "_selected_action": [str(user.pk)]}
    )

    assert response.status_code == 302
    assert attempt(api_client, LOGIN, user).status_code == 200
    # Restored by an administrator, the account is an ordinary live one again.
    assert not User.objects.get(id=user.id).deleted_by_owner
