"""One shape, one rule, one contract (issue 9).

- The user's API shape is built by `accounts.api_shapes`; every door's body equals it,
  and it equals what DRF's own serializer fields would render (so the schema's
  description and the bodies cannot drift).
- The `is_admin` rule is `accounts.models.user_is_admin`, for rows and cached principals alike.
- Token responses are rendered by the serializers the schema names.
- A lookup that finds nothing is the domain's `NotFound` (404 JSON), never a bare `DoesNotExist`.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rest_framework import serializers

from accounts import cache as auth_cache
from accounts import selectors, services
from accounts.api_shapes import ADMIN_USER_FIELDS, USER_FIELDS, user_admin_api_shape, user_api_shape
from accounts.models import User, user_is_admin
from accounts.serializers import (
    AdminUserSerializer,
    RefreshedPairSerializer,
    TokenPairSerializer,
    UserSerializer,
    VerifiedSerializer,
)
from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD, bearer, login_tokens
from core.errors import NotFound

API = "/api/v1"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


def drf_rendering(serializer_class: type[serializers.Serializer], instance: Any) -> dict[str, Any]:
    """What DRF's declared fields render, field by field (the serializer's own body skips this)."""
    return dict(serializers.Serializer.to_representation(serializer_class(), instance))


@pytest.fixture
def people(db: Any) -> dict[str, User]:
    superuser = UserFactory(roles=["user"])
    User.objects.filter(id=superuser.id).update(is_superuser=True, is_staff=True)
    return {
        "plain": UserFactory(roles=["user"]),
        "moderator": UserFactory(roles=["user", "moderator"]),
        "admin role": UserFactory(roles=["user", "admin"]),
        "superuser": User.objects.get(id=superuser.id),
    }


# --- the shape -------------------------------------------------------------------------------


def test_the_shape_has_the_serializers_fields_in_the_contracts_order():
    assert tuple(UserSerializer().fields) == USER_FIELDS
    assert set(AdminUserSerializer().fields) == set(ADMIN_USER_FIELDS)


@pytest.mark.parametrize("who", ["plain", "moderator", "admin role", "superuser"])
def test_the_shape_is_what_drf_would_render_for_a_row_and_for_a_cached_principal(people, who):
    user = User.objects.prefetch_related("groups").get(id=people[who].id)
    assert user_api_shape(user) == drf_rendering(UserSerializer, user)
    assert user_admin_api_shape(user) == drf_rendering(AdminUserSerializer, user)
    principal = auth_cache.Principal.from_user(user)
    assert principal.as_api_user() == user_api_shape(user) == drf_rendering(UserSerializer, principal)


def test_every_door_shows_the_same_user(people):
    user = people["admin role"]
    tokens = login_tokens(user)
    expected = user_api_shape(User.objects.get(id=user.id))

    me = bearer(tokens["access"]).get(f"{API}/users/me").json()
    admin_view = bearer(tokens["access"]).get(f"{API}/users/{user.id}").json()
    export = bearer(tokens["access"]).get(f"{API}/users/me/export").json()

    # last_login moved with the login above; everything else is the one shape.
    assert {k: v for k, v in me.items() if k != "updated_at"} == {
        k: v for k, v in expected.items() if k != "updated_at"
    }
    assert {k: admin_view[k] for k in USER_FIELDS} == me
    assert {k: export["profile"][k] for k in ADMIN_USER_FIELDS} == admin_view


# --- the is_admin rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"), [("plain", False), ("moderator", False), ("admin role", True), ("superuser", True)]
)
def test_is_admin_is_one_rule_everywhere(people, who, expected):
    user = User.objects.get(id=people[who].id)
    assert user_is_admin(is_superuser=user.is_superuser, roles=user.roles) is expected
    assert user.is_admin is expected
    assert auth_cache.Principal.from_user(user).is_admin is expected
    client = bearer(login_tokens(user)["access"])
    assert client.get(f"{API}/users/me").json()["is_admin"] is expected
    # The API's permission and the Django admin's agree with it.
    assert (client.get(f"{API}/users").status_code == 200) is expected
    assert user.has_module_perms("accounts") is expected


# --- token responses ---------------------------------------------------------------------------


def test_token_bodies_are_their_serializers(user, api_client):
    pair = api_client.post(
        f"{API}/auth/login", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert list(pair.json()) == list(TokenPairSerializer().fields)
    assert pair.json()["token_type"] == "Bearer"

    refreshed = api_client.post(f"{API}/auth/refresh", {"refresh": pair.json()["refresh"]}, format="json")
    assert list(refreshed.json()) == list(RefreshedPairSerializer().fields)

    verified = api_client.post(f"{API}/auth/verify", {"token": refreshed.json()["access"]}, format="json")
    assert list(verified.json()) == list(VerifiedSerializer().fields)
    assert verified.json()["user_id"] == str(user.id)


def test_the_schema_describes_the_token_bodies_the_service_sends(client, user, api_client):
    document = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = document["components"]["schemas"]
    body = api_client.post(
        f"{API}/auth/login", {"username": user.username, "password": PASSWORD}, format="json"
    )

    login_schema = document["paths"][f"{API}/auth/login"]["post"]["responses"]["200"]["content"]
    reference = login_schema["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(components[reference]["properties"]) == set(body.json())


# --- lookups -----------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", [uuid.uuid4(), str(uuid.uuid4()), "not-a-uuid"])
def test_a_lookup_that_finds_nothing_is_the_domains_not_found(missing):
    calls = [
        lambda: services.user_get(user_id=missing),
        lambda: services.user_update(user_id=missing, full_name="x"),
        lambda: services.user_soft_delete(user_id=missing),
        lambda: services.user_restore(user_id=missing),
        lambda: services.password_set(user_id=missing, password=PASSWORD),
        lambda: services.password_change(
            user_id=missing, session_id=None, old_password="a", new_password="b"
        ),
        lambda: services.user_delete_self(user_id=missing, password="a"),
        lambda: services.role_request_cancel(request_id=missing, user_id=missing),
        lambda: services.role_request_approve(request_id=missing, admin_id=missing),
        lambda: selectors.user_export(user_id=missing),
        lambda: selectors.user_with_roles(user_id=missing),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            call()


def test_the_me_endpoints_of_a_user_removed_under_a_live_token_are_not_a_500(auth_client, user):
    """The cached principal outlives the row for a moment; the answer is 401 or 404 JSON, never a 500."""
    assert auth_client.get(f"{API}/users/me").status_code == 200
    User.objects.filter(id=user.id).delete()
    response = auth_client.get(f"{API}/users/me/export")
    assert response.status_code in {401, 404}
    assert set(response.json()) == {"detail", "code"}
