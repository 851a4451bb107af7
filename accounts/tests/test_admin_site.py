"""The Django admin for accounts: changes go through the services, with their effects."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.models import AuthSession, User
from accounts.tests.factories import UserFactory
from notifications.models import OutboxEvent


def _change_form(user: User, *, groups: list[Group], is_active: bool = True, revoke: set[str] = frozenset()):
    sessions = list(AuthSession.objects.filter(user=user).order_by("-last_used_at"))
    data = {
        "username": user.username,
        "email": user.email,
        "full_name": user.full_name,
        "groups": [g.pk for g in groups],
        "auth_sessions-TOTAL_FORMS": str(len(sessions)),
        "auth_sessions-INITIAL_FORMS": str(len(sessions)),
        "auth_sessions-MIN_NUM_FORMS": "0",
        "auth_sessions-MAX_NUM_FORMS": "1000",
        # The linked identities inline (social login): none here.
        "social_auth-TOTAL_FORMS": "0",
        "social_auth-INITIAL_FORMS": "0",
        "social_auth-MIN_NUM_FORMS": "0",
        "social_auth-MAX_NUM_FORMS": "1000",
    }
    if is_active:
        data["is_active"] = "on"
    for index, session in enumerate(sessions):
        data[f"auth_sessions-{index}-id"] = str(session.pk)
        data[f"auth_sessions-{index}-user"] = str(user.pk)
        if str(session.pk) in revoke:
            data[f"auth_sessions-{index}-revoke"] = "on"
    return data


@pytest.mark.django_db
def test_user_list_search_and_filters_load(staff_client, user):
    for query in (
        "",
        "?q=" + user.username,
        "?groups__id__exact=1",
        "?is_active__exact=0",
        "?locked=yes",
        "?deleted_at__isnull=True",
    ):
        response = staff_client.get("/admin/accounts/user/" + query)
        assert response.status_code == 200, query
    assert user.username in staff_client.get("/admin/accounts/user/?q=" + user.username).content.decode()


@pytest.mark.django_db
def test_granting_admin_in_the_admin_gives_staff_refreshes_the_cache_and_emits(staff_client, user, login):
    access = login(user)["access"]
    admin_group = Group.objects.get(name="admin")
    response = staff_client.post(
        f"/admin/accounts/user/{user.pk}/change/",
        _change_form(user, groups=[Group.objects.get(name="user"), admin_group]),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()
    assert user.is_staff
    assert user.roles == ["admin", "user"]
    assert OutboxEvent.objects.filter(key="role_changed", payload__user_id=str(user.id)).exists()
    me = staff_client.get("/api/v1/users/me", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert me.json()["is_admin"] is True


@pytest.mark.django_db
def test_deactivating_in_the_admin_ends_the_sessions(staff_client, user, login):
    access = login(user)["access"]
    response = staff_client.post(
        f"/admin/accounts/user/{user.pk}/change/",
        _change_form(user, groups=list(user.groups.all()), is_active=False),
    )
    assert response.status_code == 302
    assert not AuthSession.objects.active().filter(user=user).exists()
    assert staff_client.get("/api/v1/users/me", HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 401


@pytest.mark.django_db
def test_revoking_one_session_from_the_inline(staff_client, user, login):
    first, second = login(user), login(user)
    response = staff_client.post(
        f"/admin/accounts/user/{user.pk}/change/",
        _change_form(user, groups=list(user.groups.all()), revoke={first["session_id"]}),
    )
    assert response.status_code == 302
    auth = {"HTTP_AUTHORIZATION": f"Bearer {first['access']}"}
    assert staff_client.get("/api/v1/users/me", **auth).status_code == 401
    auth = {"HTTP_AUTHORIZATION": f"Bearer {second['access']}"}
    assert staff_client.get("/api/v1/users/me", **auth).status_code == 200


@pytest.mark.django_db
def test_actions_revoke_all_and_restore(staff_client, user, login):
    access = login(user)["access"]
    response = staff_client.post(
        "/admin/accounts/user/", {"action": "revoke_all_sessions", "_selected_action": [str(user.pk)]}
    )
    assert response.status_code == 302
    assert staff_client.get("/api/v1/users/me", HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 401

    gone = UserFactory()
    from accounts import services

    services.user_soft_delete(user_id=gone.id)
    response = staff_client.post(
        "/admin/accounts/user/", {"action": "restore_users", "_selected_action": [str(gone.pk)]}
    )
    assert response.status_code == 302
    gone.refresh_from_db()
    assert gone.deleted_at is None
    assert gone.is_active


@pytest.mark.django_db
def test_sessions_admin_revoke_action_and_no_token_hash(staff_client, user, login):
    tokens = login(user)
    page = staff_client.get(f"/admin/accounts/authsession/{tokens['session_id']}/change/")
    assert page.status_code == 200
    session = AuthSession.objects.get(id=tokens["session_id"])
    assert session.refresh_token_hash not in page.content.decode()
    response = staff_client.post(
        "/admin/accounts/authsession/", {"action": "revoke", "_selected_action": [tokens["session_id"]]}
    )
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.revoked_at is not None
