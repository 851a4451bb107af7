"""Linked identities: list, unlink with its guard, and the Django admin (API.md → Social login)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from social_django.models import UserSocialAuth

from accounts.models import AuditEvent, User
from accounts.social.services import identity_unlink
from accounts.tests.factories import UserFactory
from accounts.tests.social_support import IDENTITIES
from accounts.tests.support import bearer

pytestmark = pytest.mark.django_db
QUERY_COUNTS = Path(__file__).resolve().parents[2] / "config" / "tests" / "query_counts.json"


def link(user, provider: str, uid: str) -> UserSocialAuth:
    return UserSocialAuth.objects.create(user=user, provider=provider, uid=uid, id_key="id")


@pytest.fixture
def social_only(login, api_client):
    """An account made by social login: no usable password."""
    user = UserFactory()
    user.set_unusable_password()
    user.save()
    return user


def token_for(user) -> str:
    from accounts.services import session_open

    return session_open(user=user, ip=None, user_agent="tests").access


def test_the_list_shows_the_callers_identities_only(auth_client, user):
    link(user, "yandex-oauth2", "1000034426")
    link(user, "telegram", "424242")
    link(UserFactory(), "telegram", "99")

    response = auth_client.get(IDENTITIES)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert sorted((i["provider"], i["uid"]) for i in body["results"]) == [
        ("telegram", "424242"),
        ("yandex", "1000034426"),
    ]
    assert all(
        set(i) == {"provider", "uid", "linked_at"} and i["linked_at"].endswith("Z") for i in body["results"]
    )


def test_the_list_needs_a_token():
    assert APIClient().get(IDENTITIES).status_code == 401


def test_the_list_query_count_does_not_grow_with_the_page(user):
    expected = json.loads(QUERY_COUNTS.read_text())[f"GET {IDENTITIES}"]
    client = bearer(token_for(user))
    client.get(IDENTITIES)  # the auth cache warm, as it is in use
    counts = []
    for uid in ("1", "2"):
        link(user, "telegram" if uid == "1" else "yandex-oauth2", uid)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(IDENTITIES).status_code == 200
        counts.append(len(queries))
    assert counts == [expected, expected]


def test_unlinking_with_a_password_left_is_204_and_audited(auth_client, user):
    link(user, "yandex-oauth2", "1000034426")

    response = auth_client.delete(f"{IDENTITIES}/yandex")

    assert response.status_code == 204, response.content
    assert not UserSocialAuth.objects.filter(user=user).exists()
    event = AuditEvent.objects.get(kind="identity_unlinked")
    assert event.user == user
    assert event.actor is None
    assert event.detail == {"provider": "yandex", "uids": ["1000034426"]}


@pytest.mark.parametrize("provider", ["telegram", "github", "YANDEX"])
def test_unlinking_what_is_not_linked_is_404(auth_client, user, provider):
    link(UserFactory(), "telegram", "5")  # someone else's
    response = auth_client.delete(f"{IDENTITIES}/{provider}")
    assert response.status_code == 404
    assert UserSocialAuth.objects.count() == 1


def test_the_last_way_to_log_in_is_not_unlinked(social_only):
    link(social_only, "telegram", "424242")
    client = bearer(token_for(social_only))

    response = client.delete(f"{IDENTITIES}/telegram")

    assert response.status_code == 400
    assert response.json()["code"] == "last_login_method"
    assert UserSocialAuth.objects.filter(user=social_only).count() == 1
    assert not AuditEvent.objects.filter(kind="identity_unlinked").exists()


def test_with_another_identity_left_one_may_go_but_not_the_last(social_only):
    link(social_only, "telegram", "424242")
    link(social_only, "yandex-oauth2", "1000034426")
    client = bearer(token_for(social_only))

    assert client.delete(f"{IDENTITIES}/telegram").status_code == 204
    assert client.delete(f"{IDENTITIES}/yandex").status_code == 400
    assert list(UserSocialAuth.objects.values_list("provider", flat=True)) == ["yandex-oauth2"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_unlinks_at_once_leave_one_identity():
    from testing.races import run_at_once

    if connection.vendor != "postgresql":
        pytest.skip("row locks across connections need PostgreSQL")
    user = UserFactory()
    user.set_unusable_password()
    user.save()
    link(user, "telegram", "1")
    link(user, "yandex-oauth2", "2")

    results = run_at_once(
        [
            lambda: identity_unlink(user_id=user.id, provider="telegram"),
            lambda: identity_unlink(user_id=user.id, provider="yandex"),
        ]
    )

    assert UserSocialAuth.objects.filter(user=user).count() == 1
    assert sum(r is None for r in results) == 1


# --- the Django admin -------------------------------------------------------------


def _change_form(user: User, *, unlink: set[str]) -> dict:
    identities = list(UserSocialAuth.objects.filter(user=user).order_by("id"))
    data = {
        "username": user.username,
        "email": user.email,
        "full_name": user.full_name,
        "groups": [g.pk for g in user.groups.all()],
        "is_active": "on",
        "auth_sessions-TOTAL_FORMS": "0",
        "auth_sessions-INITIAL_FORMS": "0",
        "social_auth-TOTAL_FORMS": str(len(identities)),
        "social_auth-INITIAL_FORMS": str(len(identities)),
    }
    for index, identity in enumerate(identities):
        data[f"social_auth-{index}-id"] = str(identity.pk)
        data[f"social_auth-{index}-user"] = str(user.pk)
        if identity.provider in unlink:
            data[f"social_auth-{index}-unlink"] = "on"
    return data


def test_the_users_admin_page_shows_the_linked_identities(staff_client, user):
    link(user, "telegram", "424242")
    page = staff_client.get(f"/admin/accounts/user/{user.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "linked identities" in html.lower()
    assert "424242" in html


def test_an_admin_unlinks_from_the_users_page_through_the_service(staff_client, user, admin_user):
    link(user, "telegram", "424242")
    link(user, "yandex-oauth2", "77")

    response = staff_client.post(
        f"/admin/accounts/user/{user.pk}/change/", _change_form(user, unlink={"telegram"})
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(UserSocialAuth.objects.filter(user=user).values_list("provider", flat=True)) == [
        "yandex-oauth2"
    ]
    event = AuditEvent.objects.get(kind="identity_unlinked")
    assert event.user == user
    assert event.actor == admin_user


def test_the_admin_is_held_to_the_same_guard(staff_client, social_only):
    link(social_only, "telegram", "424242")
    response = staff_client.post(
        f"/admin/accounts/user/{social_only.pk}/change/",
        _change_form(social_only, unlink={"telegram"}),
        follow=True,
    )
    assert response.status_code == 200
    assert "only way to log in" in response.content.decode()
    assert UserSocialAuth.objects.filter(user=social_only).count() == 1


def test_the_identity_admin_is_read_only_and_unlinks_with_its_action(staff_client, user):
    identity = link(user, "telegram", "424242")
    assert staff_client.get(f"/admin/social_django/usersocialauth/{identity.pk}/delete/").status_code == 403
    staff_client.post(
        f"/admin/social_django/usersocialauth/{identity.pk}/change/", {"uid": "1", "provider": "x"}
    )
    identity.refresh_from_db()
    assert identity.uid == "424242"

    response = staff_client.post(
        "/admin/social_django/usersocialauth/",
        {"action": "unlink_selected", "_selected_action": [identity.pk]},
    )
    assert response.status_code == 302
    assert not UserSocialAuth.objects.exists()
    assert AuditEvent.objects.filter(kind="identity_unlinked").count() == 1


def test_the_paths_are_in_the_schema():
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    assert "post" in paths["/api/v1/auth/social/yandex"]
    assert "post" in paths["/api/v1/auth/social/telegram"]
    assert "get" in paths["/api/v1/users/me/identities"]
    assert "delete" in paths["/api/v1/users/me/identities/{provider}"]
    telegram = paths["/api/v1/auth/social/telegram"]["post"]["requestBody"]["content"]["application/json"]
    assert telegram["schema"]["$ref"].endswith("TelegramLoginRequest")


def test_the_export_lists_the_identities(auth_client, user):
    link(user, "telegram", "424242")
    data = auth_client.get("/api/v1/users/me/export").json()
    assert [(i["provider"], i["uid"]) for i in data["identities"]] == [("telegram", "424242")]
