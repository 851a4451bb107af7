"""`/users/me` for everyone and `/users` for administrators (API.md, "Users")."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import AuthSession, User
from accounts.tests.factories import UserFactory
from accounts.tests.mfa_support import assert_admin_at_once
from accounts.tests.support import USER_FIELDS, bearer, verification_link_use

ME = "/api/v1/users/me"
USERS = "/api/v1/users"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"


pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


def login_body(identifier: str, password: str):
    return APIClient().post(LOGIN, {"username": identifier, "password": password}, format="json")


def roles_of(user: User) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


# --- /users/me -------------------------------------------------------------------


def test_me_shows_the_caller(auth_client, user):
    response = auth_client.get(ME)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["id"] == str(user.id)
    assert body["username"] == user.username
    assert body["email"] == user.email
    assert body["full_name"] == user.full_name
    assert body["roles"] == ["user"]
    assert body["is_active"] is True
    assert body["is_admin"] is False
    assert body["created_at"].endswith("Z")
    assert body["updated_at"].endswith("Z")


def test_me_shows_an_admin_as_admin(admin_client):
    body = admin_client.get(ME).json()

    assert body["is_admin"] is True
    assert body["roles"] == ["admin", "user"]


def test_me_needs_a_token():
    response = APIClient().get(ME)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_me_costs_no_query_with_a_warm_cache(auth_client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = auth_client.get(ME)

    assert response.status_code == 200
    assert response.json()["roles"] == ["user"]


def test_me_with_a_cold_cache_still_answers_then_warms(auth_client, user, django_assert_num_queries):
    cache.clear()

    with CaptureQueriesContext(connection) as cold:
        response = auth_client.get(ME)

    assert response.status_code == 200
    assert response.json()["username"] == user.username
    assert 0 < len(cold.captured_queries) <= 4
    with django_assert_num_queries(0):
        assert auth_client.get(ME).status_code == 200


def test_patch_me_changes_the_profile_fields(auth_client, user, password):
    changes = {"username": "NewName", "email": "New.Mail@Example.com", "full_name": "New Name"}
    old_email = user.email
    response = auth_client.patch(ME, {**changes, "current_password": password}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == USER_FIELDS
    # The new address waits for its link; the other fields change at once.
    assert (body["username"], body["email"], body["email_pending"], body["full_name"]) == (
        "NewName",
        old_email,
        "new.mail@example.com",
        "New Name",
    )
    user.refresh_from_db()
    assert (user.username, user.email, user.full_name) == ("NewName", old_email, "New Name")
    # The next request, served from the cache, sees the change.
    again = auth_client.get(ME).json()
    assert (again["username"], again["email_pending"], again["full_name"]) == (
        "NewName",
        "new.mail@example.com",
        "New Name",
    )
    assert again["updated_at"] == body["updated_at"]

    assert verification_link_use("new.mail@example.com").status_code == 204
    after = auth_client.get(ME).json()
    assert (after["email"], after["email_pending"], after["email_verified"]) == (
        "new.mail@example.com",
        None,
        True,
    )


def test_patch_me_one_field_leaves_the_others(auth_client, user):
    response = auth_client.patch(ME, {"full_name": "Only This"}, format="json")

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.full_name == "Only This"
    assert user.username == response.json()["username"]
    assert auth_client.get(ME).json()["full_name"] == "Only This"


def test_patch_me_new_username_and_email_log_in(auth_client, password):
    changes = {"username": "renamed", "email": "renamed@example.com", "current_password": password}
    assert auth_client.patch(ME, changes, format="json").status_code == 200
    assert verification_link_use("renamed@example.com").status_code == 204

    assert login_body("renamed", password).status_code == 200
    assert login_body("RENAMED@example.com", password).status_code == 200


def test_patch_me_cannot_escalate(auth_client, user):
    moderator = Group.objects.get(name="moderator")
    attempt = {
        "is_admin": True,
        "is_staff": True,
        "is_superuser": True,
        "roles": ["user", "admin"],
        "groups": [moderator.pk],
        "is_active": False,
        "id": str(uuid.uuid4()),
        "deleted_at": "2020-01-01T00:00:00Z",
        "full_name": "Sneaky",
    }

    response = auth_client.patch(ME, attempt, format="json")

    # Refused by name, not dropped in silence (API.md → Conventions): the client learns it did not work.
    assert response.status_code == 400, response.content
    assert response.json() == {
        "is_admin": ["This field is read-only."],
        "is_staff": ["Unknown field."],
        "is_superuser": ["Unknown field."],
        "roles": ["This field is read-only."],
        "groups": ["Unknown field."],
        "is_active": ["This field is read-only."],
        "id": ["This field is read-only."],
        "deleted_at": ["Unknown field."],
    }
    row = User.objects.get(id=user.id)
    assert row.full_name == user.full_name  # the whole request was refused
    assert not row.is_staff
    assert not row.is_superuser
    assert row.is_active
    assert row.deleted_at is None
    assert roles_of(row) == ["user"]
    assert User.objects.count() == 1
    # Still an ordinary user on the next requests too.
    assert auth_client.get(ME).json()["is_admin"] is False
    assert auth_client.get(USERS).status_code == 403


@pytest.mark.parametrize("field", ["username", "email"])
def test_patch_me_to_a_taken_name_is_400(auth_client, user, password, field):
    other = UserFactory(username="TakenName", email="taken@example.com")
    value = {"username": "takenNAME", "email": "TAKEN@example.com"}[field]

    response = auth_client.patch(ME, {field: value, "current_password": password}, format="json")

    assert response.status_code == 400
    assert field in response.json()
    user.refresh_from_db()
    assert getattr(user, field) != getattr(other, field)
    assert auth_client.get(ME).json()[field] == getattr(user, field)


def test_patch_me_may_change_the_case_of_its_own_username(auth_client, user):
    response = auth_client.patch(ME, {"username": user.username.upper()}, format="json")

    assert response.status_code == 200, response.content
    assert User.objects.get(id=user.id).username == user.username.upper()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "has space"),
        ("username", "x" * 151),
        ("email", "not-an-email"),
        ("full_name", "a\x00b"),
    ],
)
def test_patch_me_refuses_invalid_values(auth_client, user, field, value):
    response = auth_client.patch(ME, {field: value}, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert getattr(User.objects.get(id=user.id), field) == getattr(user, field)


def test_delete_me_with_a_wrong_password_is_400(auth_client, user):
    response = auth_client.delete(ME, {"password": "not my password"}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()
    user.refresh_from_db()
    assert user.deleted_at is None
    assert user.is_active
    assert auth_client.get(ME).status_code == 200


def test_delete_me_without_a_password_is_400(auth_client, user):
    response = auth_client.delete(ME)

    assert response.status_code == 400
    assert "password" in response.json()
    assert User.objects.get(id=user.id).deleted_at is None


def test_delete_me_soft_deletes_and_ends_every_session(auth_client, user, password, login):
    other = login(user)
    failure = login_body("nobody-at-all", password)

    response = auth_client.delete(ME, {"password": password}, format="json")

    assert response.status_code == 204
    row = User.objects.get(id=user.id)
    assert row.deleted_at is not None
    assert row.is_active is False
    assert auth_client.get(ME).status_code == 401
    assert bearer(other["access"]).get(ME).status_code == 401
    assert APIClient().post(REFRESH, {"refresh": other["refresh"]}, format="json").status_code == 401
    assert not AuthSession.objects.active().filter(user=user).exists()
    for identifier in (user.username, user.email):
        denied = login_body(identifier, password)
        assert (denied.status_code, denied.json()) == (401, failure.json())


# --- /users (administrators) -----------------------------------------------------


def test_users_list_is_forbidden_to_non_admins(auth_client):
    response = auth_client.get(USERS)

    assert response.status_code == 403
    assert set(response.json()) == {"detail", "code"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", USERS),
        ("post", USERS),
        ("get", f"{USERS}/{uuid.uuid4()}"),
        ("patch", f"{USERS}/{uuid.uuid4()}"),
        ("delete", f"{USERS}/{uuid.uuid4()}"),
    ],
)
def test_users_api_is_forbidden_to_non_admins_everywhere(auth_client, method, path):
    assert getattr(auth_client, method)(path, {}, format="json").status_code == 403


def test_users_list_needs_a_token():
    response = APIClient().get(USERS)

    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_admin_lists_users_paginated(admin_client, admin_user):
    UserFactory.create_batch(4)

    response = admin_client.get(USERS, {"page_size": 2})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert len(body["results"]) == 2
    assert body["next"]
    assert set(body["results"][0]) >= USER_FIELDS
    ids = {r["id"] for r in body["results"]}
    url = body["next"]
    while url:
        page = admin_client.get(url).json()
        ids |= {r["id"] for r in page["results"]}
        url = page["next"]
    assert ids == {str(pk) for pk in User.objects.values_list("id", flat=True)}
    assert len(ids) == 5


def test_admin_list_page_size_is_capped_at_100(admin_client):
    User.objects.bulk_create([User(username=f"bulk{i}", email=f"bulk{i}@example.com") for i in range(101)])

    body = admin_client.get(USERS, {"page_size": 500}).json()

    assert len(body["results"]) == 100
    assert body["next"]


def test_admin_list_search(admin_client):
    UserFactory(username="zebra", email="z@example.com", full_name="Zed")
    UserFactory(username="yak", email="stripes@example.com", full_name="Y")
    UserFactory(username="xeno", email="x@example.com", full_name="Striped Horse")
    UserFactory(username="wolf", email="w@example.com", full_name="W")

    def names(term: str) -> set[str]:
        return {r["username"] for r in admin_client.get(USERS, {"search": term}).json()["results"]}

    assert names("zEbRa") == {"zebra"}
    assert names("stripe") == {"yak", "xeno"}
    assert names("nothing-matches") == set()


def test_admin_list_filters_by_role_and_activity(admin_client, admin_user):
    moderator = UserFactory(roles=["user", "moderator"])
    inactive = UserFactory(is_active=False)
    plain = UserFactory()

    def ids(**params) -> set[str]:
        return {r["id"] for r in admin_client.get(USERS, params).json()["results"]}

    assert ids(role="moderator") == {str(moderator.id)}
    assert ids(role="admin") == {str(admin_user.id)}
    assert ids(role="user") == {str(u.id) for u in (admin_user, moderator, inactive, plain)}
    assert ids(is_active="false") == {str(inactive.id)}
    assert str(inactive.id) not in ids(is_active="true")
    assert ids(is_active="true") == {str(u.id) for u in (admin_user, moderator, plain)}


def test_admin_list_orders_by_username(admin_client, admin_user):
    for name in ("mike", "alpha", "zulu", "delta"):
        UserFactory(username=name)

    def order(ordering: str) -> list[str]:
        results = admin_client.get(USERS, {"ordering": ordering, "page_size": 100}).json()["results"]
        return [r["username"] for r in results]

    expected = sorted(["mike", "alpha", "zulu", "delta", admin_user.username])
    assert order("username") == expected
    assert order("-username") == expected[::-1]


def test_admin_list_cost_does_not_grow_with_the_users(admin_client):
    def cost() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(USERS, {"page_size": 100})
        assert response.status_code == 200
        return len(queries.captured_queries)

    UserFactory.create_batch(2, roles=["user", "moderator"])
    admin_client.get(USERS)  # warm the cache
    few = cost()
    UserFactory.create_batch(12, roles=["user", "moderator"])

    many = cost()

    assert len(admin_client.get(USERS, {"page_size": 100}).json()["results"]) == 15
    assert many == few
    assert many <= 4


def test_admin_creates_a_user_with_roles(admin_client, password):
    response = admin_client.post(
        USERS,
        {
            "username": "created",
            "email": "Created@Example.com",
            "password": "another decent passphrase",
            "full_name": "C",
            "roles": ["user", "moderator"],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["roles"] == ["moderator", "user"]
    assert body["email"] == "created@example.com"
    assert "password" not in body
    row = User.objects.get(id=body["id"])
    assert roles_of(row) == ["moderator", "user"]
    assert not row.is_staff
    assert login_body("created", "another decent passphrase").status_code == 200


@pytest.mark.parametrize("body", [{}, {"password": None}], ids=["omitted", "null"])
def test_admin_creates_a_user_without_a_usable_password(admin_client, body):
    """Found by the admin fuzzing pass: an omitted password was a 500, a null one a 201."""
    response = admin_client.post(
        USERS, {"username": "nopass", "email": "nopass@example.com", **body}, format="json"
    )

    assert response.status_code == 201, response.content
    assert not User.objects.get(username="nopass").has_usable_password()


def test_admin_creates_a_user_with_role_user_by_default(admin_client):
    response = admin_client.post(
        USERS,
        {"username": "plain", "email": "plain@example.com", "password": "another decent passphrase"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["roles"] == ["user"]


def test_admin_create_refuses_an_unknown_role_and_a_taken_name(admin_client, user):
    unknown = admin_client.post(
        USERS,
        {
            "username": "x1",
            "email": "x1@example.com",
            "password": "another decent passphrase",
            "roles": ["user", "wizard"],
        },
        format="json",
    )
    taken = admin_client.post(
        USERS,
        {
            "username": user.username.upper(),
            "email": "x2@example.com",
            "password": "another decent passphrase",
        },
        format="json",
    )

    assert unknown.status_code == 400
    assert "roles" in unknown.json()
    assert taken.status_code == 400
    assert "username" in taken.json()
    assert not User.objects.filter(email__in=["x1@example.com", "x2@example.com"]).exists()


def test_admin_gets_one_user(admin_client, user):
    response = admin_client.get(f"{USERS}/{user.id}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) >= USER_FIELDS
    assert body["id"] == str(user.id)
    assert body["username"] == user.username
    assert "password" not in body


def test_admin_patch_profile_fields(admin_client, user):
    response = admin_client.patch(
        f"{USERS}/{user.id}", {"full_name": "Set By Admin", "email": "A@B.io"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["full_name"] == "Set By Admin"
    user.refresh_from_db()
    assert (user.full_name, user.email) == ("Set By Admin", "a@b.io")


def test_admin_deactivation_ends_the_users_sessions_at_once(admin_client, auth_client, user, password):
    assert auth_client.get(ME).status_code == 200
    failure = login_body("nobody-at-all", password).json()

    response = admin_client.patch(f"{USERS}/{user.id}", {"is_active": False}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["is_active"] is False
    assert User.objects.get(id=user.id).is_active is False
    assert auth_client.get(ME).status_code == 401
    assert (
        APIClient().post(REFRESH, {"refresh": auth_client.tokens["refresh"]}, format="json").status_code
        == 401
    )
    denied = login_body(user.username, password)
    assert (denied.status_code, denied.json()) == (401, failure)

    assert admin_client.patch(f"{USERS}/{user.id}", {"is_active": True}, format="json").status_code == 200
    assert login_body(user.username, password).status_code == 200
    # Reactivation opens no old session.
    assert auth_client.get(ME).status_code == 401


def test_admin_grants_the_admin_role(admin_client, auth_client, user, settings):
    assert auth_client.get(USERS).status_code == 403

    response = admin_client.patch(f"{USERS}/{user.id}", {"roles": ["user", "admin"]}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["is_admin"] is True
    row = User.objects.get(id=user.id)
    assert roles_of(row) == ["admin", "user"]
    assert row.is_staff is True
    assert row.is_admin is True
    # The user's current token gets the new rights at once (read from the account).
    assert auth_client.get(ME).json()["is_admin"] is True
    assert_admin_at_once(auth_client, settings)


def test_admin_revokes_the_admin_role(admin_client, user, login):
    target = UserFactory(roles=["user", "admin"])
    target_client = bearer(login(target)["access"])
    assert target_client.get(USERS).status_code == 200

    response = admin_client.patch(f"{USERS}/{target.id}", {"roles": ["user"]}, format="json")

    assert response.status_code == 200
    row = User.objects.get(id=target.id)
    assert roles_of(row) == ["user"]
    assert row.is_staff is False
    assert target_client.get(USERS).status_code == 403


def test_admin_patch_unknown_role_is_400_and_changes_nothing(admin_client, user):
    response = admin_client.patch(f"{USERS}/{user.id}", {"roles": ["admin", "wizard"]}, format="json")

    assert response.status_code == 400
    assert "roles" in response.json()
    assert roles_of(User.objects.get(id=user.id)) == ["user"]


def test_admin_deletes_a_user_softly(admin_client, auth_client, user, password):
    response = admin_client.delete(f"{USERS}/{user.id}")

    assert response.status_code == 204
    row = User.objects.get(id=user.id)
    assert row.deleted_at is not None
    assert row.is_active is False
    assert auth_client.get(ME).status_code == 401
    assert not AuthSession.objects.active().filter(user=user).exists()
    assert login_body(user.username, password).status_code == 401
    shown = admin_client.get(f"{USERS}/{user.id}").json()
    assert shown["deleted_at"] is not None


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_admin_unknown_user_is_404(admin_client, method):
    response = getattr(admin_client, method)(f"{USERS}/{uuid.uuid4()}", {}, format="json")

    assert response.status_code == 404
    assert set(response.json()) == {"detail", "code"}


def test_admin_user_path_that_is_not_a_uuid_is_404_json(admin_client):
    response = admin_client.get(f"{USERS}/not-a-uuid")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert set(response.json()) == {"detail", "code"}


def test_me_body_is_exactly_what_the_user_serializer_renders(auth_client, user):
    """GET /users/me skips the serializer for speed; its body must not drift from it."""
    from accounts.serializers import UserSerializer

    body = auth_client.get("/api/v1/users/me").json()
    user.refresh_from_db()
    assert body == UserSerializer(user).data
