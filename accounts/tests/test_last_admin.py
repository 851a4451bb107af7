"""The last administrator (API.md → Users): deactivating, deleting or taking the `admin` role from
the last active administrator is a 400 `last_admin`, through the API, the Django admin and the
commands alike, and nothing is changed.

An administrator is an active, not deleted account that is a superuser or holds the `admin`
role (`accounts.models.user_is_admin`, as the admin site's permission backend asks it).
Races of two administrators removing each other: `test_last_admin_races.py`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from accounts import services
from accounts.models import AuditEvent, AuthSession, User
from accounts.services import LastAdmin, admins_active
from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD, bearer_for, committing
from notifications.models import OutboxEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]

USERS = "/api/v1/users"
ME = "/api/v1/users/me"
LAST_ADMIN = "This would leave the service without an active administrator."


def refused(response: Any) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "last_admin"
    assert body["detail"].startswith(LAST_ADMIN)


def unchanged(user: User, *, roles: list[str] | None = None) -> None:
    """Still an active administrator, with every session, and nothing emitted about it."""
    user.refresh_from_db()
    assert user.is_active
    assert user.deleted_at is None
    if roles is not None:
        assert user.roles == roles
    assert admins_active().filter(id=user.id).exists()
    assert AuthSession.objects.active().filter(user=user).exists()
    for key in ("user_updated", "user_deleted", "role_changed"):
        assert not OutboxEvent.objects.filter(key=key, payload__user_id=str(user.id)).exists(), key


@pytest.fixture
def sole(admin_user: User) -> Any:
    """The only administrator (by role), with a session: an API client as it."""
    client = bearer_for(admin_user)
    client.user = admin_user
    assert list(admins_active()) == [admin_user]
    return client


# --- the API ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda c: c.patch(f"{USERS}/{c.user.id}", {"is_active": False}, format="json"), id="deactivate"
        ),
        pytest.param(
            lambda c: c.patch(f"{USERS}/{c.user.id}", {"roles": ["user"]}, format="json"), id="role-taken"
        ),
        pytest.param(lambda c: c.delete(f"{USERS}/{c.user.id}"), id="delete"),
        pytest.param(lambda c: c.delete(ME, {"password": PASSWORD}, format="json"), id="delete-me"),
    ],
)
def test_the_last_administrator_cannot_remove_itself_over_the_api(sole, change):
    refused(change(sole))

    unchanged(sole.user, roles=["admin", "user"])
    assert sole.get(ME).json()["is_admin"] is True


def test_a_role_admin_cannot_remove_the_superuser_and_then_itself(sole):
    """The issue's case: the superuser deactivated by a role admin, who then deletes itself."""
    root = UserFactory(password=PASSWORD, is_superuser=True, is_staff=True)

    assert sole.patch(f"{USERS}/{root.id}", {"is_active": False}, format="json").status_code == 200
    refused(sole.delete(ME, {"password": PASSWORD}, format="json"))
    refused(sole.patch(f"{USERS}/{sole.user.id}", {"roles": ["user"]}, format="json"))

    unchanged(sole.user)
    assert list(admins_active()) == [sole.user]


def test_with_another_active_administrator_each_may_go(sole):
    other = UserFactory(password=PASSWORD, roles=["user", "admin"])
    assert sole.patch(f"{USERS}/{other.id}", {"roles": ["user"]}, format="json").status_code == 200

    superuser = UserFactory(password=PASSWORD, is_superuser=True)
    # A superuser is an administrator without the role: the role admin may step down.
    response = sole.patch(f"{USERS}/{sole.user.id}", {"roles": ["user"]}, format="json")
    assert response.status_code == 200, response.content
    assert list(admins_active()) == [superuser]


def test_inactive_or_deleted_administrators_do_not_count(sole):
    asleep = UserFactory(password=PASSWORD, roles=["user", "admin"], is_active=False)
    gone = UserFactory(password=PASSWORD, is_superuser=True)
    services.user_soft_delete(user_id=gone.id)

    refused(sole.delete(f"{USERS}/{sole.user.id}"))

    assert not admins_active().filter(id__in=[asleep.id, gone.id]).exists()
    unchanged(sole.user)


def test_the_last_administrator_may_still_change_anything_else(sole):
    response = sole.patch(
        f"{USERS}/{sole.user.id}",
        {"full_name": "Still Here", "roles": ["admin", "moderator", "user"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["roles"] == ["admin", "moderator", "user"]
    # Deleting or deactivating somebody else is no business of this rule.
    other = UserFactory(password=PASSWORD)
    assert sole.patch(f"{USERS}/{other.id}", {"is_active": False}, format="json").status_code == 200
    assert sole.delete(f"{USERS}/{other.id}").status_code == 204


def test_the_services_refuse_whoever_calls_them(sole):
    for call in (
        lambda: services.user_hard_delete(user_id=sole.user.id),
        lambda: services.user_soft_delete(user_id=sole.user.id, by_owner=True),
        lambda: services.user_admin_update(user_id=sole.user.id, is_active=False),
        lambda: services.user_set_roles(user=User.objects.get(id=sole.user.id), roles=["user"]),
    ):
        with pytest.raises(LastAdmin):
            call()
    unchanged(sole.user, roles=["admin", "user"])


# --- the Django admin --------------------------------------------------------------------------------


@pytest.fixture
def root_client(client: Any, django_capture_on_commit_callbacks: Any) -> Any:
    """The Django test client, logged in as the only administrator: a superuser without the role."""
    root = UserFactory(password=PASSWORD, is_superuser=True, is_staff=True)
    bearer_for(root)  # a session, to see that it survives
    client.force_login(root)
    committing(client, django_capture_on_commit_callbacks)
    client.user = root
    assert list(admins_active()) == [root]
    return client


def change_form(user: User, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "username": user.username,
        "email": user.email,
        "full_name": user.full_name,
        "groups": [g.pk for g in user.groups.all()],
        "is_active": "on",
        "is_superuser": "on" if user.is_superuser else None,
        "auth_sessions-TOTAL_FORMS": "0",
        "auth_sessions-INITIAL_FORMS": "0",
        "auth_sessions-MIN_NUM_FORMS": "0",
        "auth_sessions-MAX_NUM_FORMS": "1000",
        "social_auth-TOTAL_FORMS": "0",
        "social_auth-INITIAL_FORMS": "0",
        "social_auth-MIN_NUM_FORMS": "0",
        "social_auth-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"is_active": None}, id="deactivate"),
        pytest.param({"is_superuser": None}, id="superuser-cleared"),
        pytest.param({"is_superuser": None, "full_name": "Renamed Too"}, id="with-other-changes"),
    ],
)
def test_the_admin_change_form_refuses_and_changes_nothing(root_client, changes):
    root = root_client.user
    url = f"/admin/accounts/user/{root.pk}/change/"

    response = root_client.post(url, change_form(root, **changes), follow=True)

    assert response.redirect_chain == [(url, 302)]
    assert LAST_ADMIN in response.content.decode()
    root.refresh_from_db()
    assert root.is_superuser
    assert root.full_name != "Renamed Too"
    unchanged(root)


def test_the_admin_change_form_refuses_to_take_the_admin_role_from_the_last_holder(client, admin_user):
    client.force_login(admin_user)  # the only administrator, by role
    url = f"/admin/accounts/user/{admin_user.pk}/change/"
    form = change_form(admin_user, groups=[Group.objects.get(name="user").pk])

    response = client.post(url, form, follow=True)

    assert LAST_ADMIN in response.content.decode()
    assert admin_user.roles == ["admin", "user"]


@pytest.mark.parametrize("action", ["deactivate_users", "soft_delete_users"])
def test_the_admin_actions_refuse_and_change_nobody(root_client, action):
    root = root_client.user
    bystander = UserFactory(password=PASSWORD)

    response = root_client.post(
        "/admin/accounts/user/",
        {"action": action, "_selected_action": [str(bystander.pk), str(root.pk)]},
        follow=True,
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert f"{root.username}: {LAST_ADMIN}" in page
    unchanged(root)
    bystander.refresh_from_db()
    assert bystander.is_active  # all or nothing: the other selected user is left as it was
    assert bystander.deleted_at is None


# --- the commands ------------------------------------------------------------------------------------


def command(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.parametrize("hard", [False, True])
def test_delete_user_refuses_the_last_administrator(sole, hard):
    args = ["delete_user", sole.user.username, "--yes", *(["--hard"] if hard else [])]
    with pytest.raises(CommandError, match=f"was not deleted: {LAST_ADMIN}.*\\(last_admin\\)"):
        command(*args)
    unchanged(sole.user)


def test_set_roles_refuses_to_take_admin_from_the_last_administrator(sole):
    with pytest.raises(CommandError, match="last_admin"):
        command("set_roles", sole.user.username, "user")
    unchanged(sole.user, roles=["admin", "user"])


def test_bulk_delete_users_reports_the_last_administrator_and_deletes_nothing(sole, tmp_path: Path):
    others = [UserFactory(password=PASSWORD) for _ in range(2)]
    path = tmp_path / "users.json"
    path.write_text(json.dumps([others[0].username, sole.user.username, others[1].username], indent=0))

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("bulk_delete_users", str(path), stdout=out, stderr=err)

    assert "1 of 3 rows failed" in str(caught.value)
    assert f"line 3: {LAST_ADMIN}" in err.getvalue()
    assert "(last_admin); nothing was deleted." in err.getvalue()
    assert not User.objects.filter(deleted_at__isnull=False).exists()
    unchanged(sole.user)


def test_bulk_delete_users_with_continue_on_error_deletes_the_others(sole, tmp_path: Path):
    others = [UserFactory(password=PASSWORD) for _ in range(2)]
    path = tmp_path / "users.json"
    path.write_text(json.dumps([others[0].username, sole.user.username, others[1].username], indent=0))

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 of 3 rows failed"):
        call_command("bulk_delete_users", str(path), "--continue-on-error", "--hard", stdout=out, stderr=err)

    assert f"line 3: Not deleted: {LAST_ADMIN}" in err.getvalue()
    assert list(User.objects.all()) == [sole.user]
    unchanged(sole.user)
    assert not AuditEvent.objects.filter(user=sole.user, kind="deleted").exists()
