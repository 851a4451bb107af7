"""Login, refresh, logout and verify, as a client sees them (API.md, "Accounts and tokens"); register: test_register.py."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from urllib.parse import urlencode

import jwt
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuthSession
from accounts.tests.factories import UserFactory
from accounts.tests.support import bearer
from accounts.tokens import token_backend

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
LOGOUT_ALL = "/api/v1/auth/logout-all"
VERIFY = "/api/v1/auth/verify"
ME = "/api/v1/users/me"

STRONG = "correct horse battery staple"

pytestmark = pytest.mark.usefixtures("commit_per_request")


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def post(path: str, data: dict | None = None, **extra):
    return APIClient().post(path, data or {}, format="json", **extra)


def register(**fields):
    data = {"username": "alice", "email": "alice@example.com", "password": STRONG, **fields}
    return post(REGISTER, data)


# --- login ---------------------------------------------------------------------


@pytest.mark.django_db
def test_login_answers_the_token_pair(user, password, settings):
    response = post(LOGIN, {"username": user.username, "password": password})

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh", "token_type", "expires_in", "session_id"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60
    assert body["access"] != body["refresh"]
    session = AuthSession.objects.get(id=body["session_id"])
    assert session.user_id == user.id
    assert session.is_active
    assert bearer(body["access"]).get(ME).json()["id"] == str(user.id)


@pytest.mark.django_db
def test_login_access_token_carries_the_contract_claims(user, password):
    body = post(LOGIN, {"username": user.username, "password": password}).json()

    access = claims(body["access"])
    assert {"sub", "sid", "roles", "exp", "iat", "jti"} <= set(access)
    assert access["sub"] == str(user.id)
    assert access["sid"] == body["session_id"]
    assert access["roles"] == ["user"]
    assert access["exp"] - access["iat"] == body["expires_in"]
    assert abs(access["iat"] - time.time()) < 60
    refresh = claims(body["refresh"])
    assert refresh["sid"] == body["session_id"]
    assert refresh["jti"] != access["jti"]


@pytest.mark.django_db
def test_login_token_roles_list_every_role(password):
    admin = UserFactory(password=password, roles=["user", "moderator", "admin"])

    body = post(LOGIN, {"username": admin.username, "password": password}).json()

    assert claims(body["access"])["roles"] == ["admin", "moderator", "user"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "identifier",
    [
        lambda u: u.username,
        lambda u: u.username.upper(),
        lambda u: u.email,
        lambda u: u.email.upper(),
        lambda u: f"  {u.email.title()} ",
    ],
    ids=["username", "USERNAME", "email", "EMAIL", "Email-with-spaces"],
)
def test_login_by_username_or_email_in_any_case(user, password, identifier):
    response = post(LOGIN, {"username": identifier(user), "password": password})

    assert response.status_code == 200, response.content
    assert claims(response.json()["access"])["sub"] == str(user.id)


@pytest.mark.django_db
def test_login_accepts_the_oauth2_password_form(user, password):
    form = urlencode({"grant_type": "password", "username": user.email, "password": password})

    response = APIClient().post(LOGIN, form, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert claims(body["access"])["sub"] == str(user.id)


@pytest.mark.django_db
def test_login_form_refuses_another_grant_type(user, password):
    form = urlencode({"grant_type": "client_credentials", "username": user.username, "password": password})

    response = APIClient().post(LOGIN, form, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert "grant_type" in response.json()
    assert not AuthSession.objects.exists()


@pytest.mark.django_db
def test_login_records_the_client_address_and_agent(user, password):
    body = post(
        LOGIN, {"username": user.username, "password": password}, HTTP_USER_AGENT="pytest-agent/1.0"
    ).json()

    session = AuthSession.objects.get(id=body["session_id"])
    assert session.ip == "127.0.0.1"
    assert session.user_agent == "pytest-agent/1.0"


@pytest.mark.django_db
def test_login_failures_are_indistinguishable(password):
    alive = UserFactory(password=password)
    inactive = UserFactory(password=password, is_active=False)
    deleted = UserFactory(password=password, is_active=False, deleted_at=timezone.now())
    deleted_but_active_flag = UserFactory(password=password, deleted_at=timezone.now())
    attempts = {
        "unknown user": {"username": "nobody-here", "password": password},
        "unknown email": {"username": "nobody@example.com", "password": password},
        "wrong password": {"username": alive.username, "password": password + "x"},
        "inactive": {"username": inactive.username, "password": password},
        "inactive by email": {"username": inactive.email, "password": password},
        "soft-deleted": {"username": deleted.username, "password": password},
        "soft-deleted, is_active left on": {
            "username": deleted_but_active_flag.username,
            "password": password,
        },
    }

    answers = {}
    for name, data in attempts.items():
        response = post(LOGIN, data)
        answers[name] = (response.status_code, response.json())

    distinct = {(status, json.dumps(body, sort_keys=True)) for status, body in answers.values()}
    assert len(distinct) == 1, answers
    status, body = answers["unknown user"]
    assert status == 401
    assert set(body) == {"detail", "code"}
    assert not AuthSession.objects.exists()


@pytest.mark.django_db
def test_login_names_missing_fields():
    response = post(LOGIN, {})

    assert response.status_code == 400
    assert {"username", "password"} <= set(response.json())


# --- refresh -------------------------------------------------------------------


@pytest.mark.django_db
def test_refresh_returns_a_new_working_pair(auth_client, user):
    old = auth_client.tokens

    response = post(REFRESH, {"refresh": old["refresh"]})

    assert response.status_code == 200, response.content
    body = response.json()
    assert {"access", "refresh"} <= set(body)
    assert body["access"] != old["access"]
    assert body["refresh"] != old["refresh"]
    new_access = claims(body["access"])
    assert new_access["sid"] == old["session_id"]
    assert new_access["sub"] == str(user.id)
    assert new_access["roles"] == ["user"]
    assert bearer(body["access"]).get(ME).status_code == 200
    assert post(REFRESH, {"refresh": body["refresh"]}).status_code == 200


@pytest.mark.django_db
def test_refresh_records_the_session_use(auth_client):
    session = AuthSession.objects.get(id=auth_client.tokens["session_id"])
    AuthSession.objects.filter(id=session.id).update(last_used_at=timezone.now() - timedelta(hours=1))

    assert post(REFRESH, {"refresh": auth_client.tokens["refresh"]}).status_code == 200

    session.refresh_from_db()
    assert timezone.now() - session.last_used_at < timedelta(minutes=1)


@pytest.mark.django_db
def test_refresh_token_reuse_revokes_the_whole_session(auth_client, user, password, login):
    other = login(user)
    spent = auth_client.tokens["refresh"]
    rotated = post(REFRESH, {"refresh": spent}).json()
    assert bearer(rotated["access"]).get(ME).status_code == 200

    replay = post(REFRESH, {"refresh": spent})

    assert replay.status_code == 401
    assert set(replay.json()) == {"detail", "code"}
    assert bearer(rotated["access"]).get(ME).status_code == 401
    assert post(REFRESH, {"refresh": rotated["refresh"]}).status_code == 401
    assert auth_client.get(ME).status_code == 401
    session = AuthSession.objects.get(id=auth_client.tokens["session_id"])
    assert session.revoked_at is not None
    # Another session of the same user is not the stolen one.
    assert bearer(other["access"]).get(ME).status_code == 200
    assert post(REFRESH, {"refresh": other["refresh"]}).status_code == 200


@pytest.mark.django_db
def test_refresh_with_an_access_token_is_refused(auth_client):
    response = post(REFRESH, {"refresh": auth_client.tokens["access"]})

    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code"}
    # Nothing was spent: the real refresh token still works.
    assert post(REFRESH, {"refresh": auth_client.tokens["refresh"]}).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.x"])
def test_refresh_with_garbage_is_401(token):
    response = post(REFRESH, {"refresh": token})

    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code"}


@pytest.mark.django_db
def test_refresh_with_a_tampered_token_is_401(auth_client):
    header, payload, signature = auth_client.tokens["refresh"].split(".")
    forged = jwt.encode(
        {**claims(auth_client.tokens["refresh"]), "sub": str(uuid.uuid4())},
        "not the signing key, but long enough for HS256",
        algorithm="HS256",
    )

    assert post(REFRESH, {"refresh": f"{header}.{payload}.{signature[::-1]}"}).status_code == 401
    assert post(REFRESH, {"refresh": forged}).status_code == 401
    assert post(REFRESH, {"refresh": auth_client.tokens["refresh"]}).status_code == 200


@pytest.mark.django_db
def test_refresh_without_a_token_is_400():
    response = post(REFRESH, {})

    assert response.status_code == 400
    assert "refresh" in response.json()


@pytest.mark.django_db
def test_refresh_after_logout_is_401(auth_client):
    assert auth_client.post(LOGOUT, {}, format="json").status_code == 204

    assert post(REFRESH, {"refresh": auth_client.tokens["refresh"]}).status_code == 401


@pytest.mark.django_db
def test_refresh_of_a_deactivated_user_is_401(auth_client, admin_client, user):
    assert (
        admin_client.patch(f"/api/v1/users/{user.id}", {"is_active": False}, format="json").status_code == 200
    )

    assert post(REFRESH, {"refresh": auth_client.tokens["refresh"]}).status_code == 401


@pytest.mark.django_db
def test_refreshed_access_token_carries_the_current_roles(auth_client, admin_client, user):
    assert (
        admin_client.patch(
            f"/api/v1/users/{user.id}", {"roles": ["user", "moderator"]}, format="json"
        ).status_code
        == 200
    )

    body = post(REFRESH, {"refresh": auth_client.tokens["refresh"]}).json()

    assert claims(body["access"])["roles"] == ["moderator", "user"]


# --- logout ----------------------------------------------------------------------


@pytest.mark.django_db
def test_logout_ends_the_session_at_once(auth_client, user, login):
    other = login(user)
    assert auth_client.get(ME).status_code == 200  # warm the cache with the live session

    response = auth_client.post(LOGOUT, {}, format="json")

    assert response.status_code == 204
    assert response.content == b""
    me = auth_client.get(ME)
    assert me.status_code == 401
    assert set(me.json()) == {"detail", "code"}
    assert post(REFRESH, {"refresh": auth_client.tokens["refresh"]}).status_code == 401
    session = AuthSession.objects.get(id=auth_client.tokens["session_id"])
    assert session.revoked_at is not None
    assert bearer(other["access"]).get(ME).status_code == 200
    assert post(REFRESH, {"refresh": other["refresh"]}).status_code == 200


@pytest.mark.django_db
def test_logout_twice_is_401(auth_client):
    assert auth_client.post(LOGOUT, {}, format="json").status_code == 204

    assert auth_client.post(LOGOUT, {}, format="json").status_code == 401


@pytest.mark.django_db
def test_logout_needs_a_token():
    response = post(LOGOUT)

    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


@pytest.mark.django_db
def test_logout_all_ends_every_session(auth_client, user, login, admin_user, password):
    others = [login(user) for _ in range(2)]
    bystander = login(admin_user)
    for tokens in others:
        assert bearer(tokens["access"]).get(ME).status_code == 200

    assert auth_client.post(LOGOUT_ALL, {}, format="json").status_code == 204

    assert auth_client.get(ME).status_code == 401
    for tokens in [auth_client.tokens, *others]:
        assert bearer(tokens["access"]).get(ME).status_code == 401
        assert post(REFRESH, {"refresh": tokens["refresh"]}).status_code == 401
    assert not AuthSession.objects.active().filter(user=user).exists()
    assert bearer(bystander["access"]).get(ME).status_code == 200
    # The account itself still works.
    assert post(LOGIN, {"username": user.username, "password": password}).status_code == 200


# --- verify ----------------------------------------------------------------------


@pytest.mark.django_db
def test_verify_a_live_token(auth_client, user):
    access = auth_client.tokens["access"]

    response = post(VERIFY, {"token": access})

    assert response.status_code == 200, response.content
    assert response.json() == {
        "valid": True,
        "user_id": str(user.id),
        "session_id": auth_client.tokens["session_id"],
        "exp": claims(access)["exp"],
    }


@pytest.mark.django_db
def test_verify_after_logout_is_401(auth_client):
    assert post(VERIFY, {"token": auth_client.tokens["access"]}).status_code == 200
    assert auth_client.post(LOGOUT, {}, format="json").status_code == 204

    response = post(VERIFY, {"token": auth_client.tokens["access"]})

    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code"}


@pytest.mark.django_db
def test_verify_a_refresh_token_is_401(auth_client):
    assert post(VERIFY, {"token": auth_client.tokens["refresh"]}).status_code == 401


@pytest.mark.django_db
def test_verify_for_a_deactivated_user_is_401(auth_client, admin_client, user):
    assert post(VERIFY, {"token": auth_client.tokens["access"]}).status_code == 200

    assert (
        admin_client.patch(f"/api/v1/users/{user.id}", {"is_active": False}, format="json").status_code == 200
    )

    assert post(VERIFY, {"token": auth_client.tokens["access"]}).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["garbage", "a.b.c"])
def test_verify_garbage_is_401(token):
    assert post(VERIFY, {"token": token}).status_code == 401


@pytest.mark.django_db
def test_verify_costs_no_query_with_a_warm_cache(auth_client, django_assert_num_queries):
    access = auth_client.tokens["access"]
    assert post(VERIFY, {"token": access}).status_code == 200

    with django_assert_num_queries(0):
        response = post(VERIFY, {"token": access})

    assert response.status_code == 200


# --- tokens the API must refuse ----------------------------------------------------


def _signed(payload: dict) -> str:
    return token_backend().encode(payload)


@pytest.mark.django_db
def test_a_refresh_token_is_not_an_access_token(auth_client):
    response = bearer(auth_client.tokens["refresh"]).get(ME)

    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code"}


@pytest.mark.django_db
def test_an_expired_access_token_is_401(auth_client):
    payload = claims(auth_client.tokens["access"])
    expired = _signed({**payload, "iat": payload["iat"] - 7200, "exp": int(time.time()) - 10})

    assert bearer(expired).get(ME).status_code == 401
    assert post(VERIFY, {"token": expired}).status_code == 401


@pytest.mark.django_db
def test_a_token_signed_with_another_key_is_401(auth_client):
    payload = claims(auth_client.tokens["access"])
    forged = jwt.encode(payload, "some other secret, long enough for HS256 too", algorithm="HS256")

    assert bearer(forged).get(ME).status_code == 401
    assert post(VERIFY, {"token": forged}).status_code == 401


@pytest.mark.django_db
def test_an_unsigned_token_is_401(auth_client):
    payload = claims(auth_client.tokens["access"])
    unsigned = jwt.encode(payload, None, algorithm="none")

    assert bearer(unsigned).get(ME).status_code == 401
    assert post(VERIFY, {"token": unsigned}).status_code == 401


@pytest.mark.django_db
def test_a_token_naming_another_users_session_is_401(auth_client, admin_client, admin_user):
    """Even a correctly signed token is refused when its `sub` does not own its `sid`."""
    mine = claims(auth_client.tokens["access"])
    theirs = claims(admin_client.tokens["access"])
    mixed = _signed({**mine, "sub": theirs["sub"], "jti": uuid.uuid4().hex})

    assert bearer(mixed).get(ME).status_code == 401
    assert post(VERIFY, {"token": mixed}).status_code == 401


@pytest.mark.slow
@pytest.mark.django_db
def test_a_long_password_against_a_migrated_bcrypt_hash_logs_in_instead_of_failing(settings):
    """bcrypt reads 72 bytes; passlib cut longer passwords, bcrypt 5 raises. The old hash must verify."""
    import bcrypt

    from accounts.tests.factories import UserFactory

    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "accounts.hashers.BCryptPasswordHasher",
    ]
    long_password = "a passphrase that goes on " * 4  # 104 bytes: over bcrypt's 72
    old = UserFactory()
    old.password = "bcrypt$" + bcrypt.hashpw(long_password.encode()[:72], bcrypt.gensalt(4)).decode()
    old.save()

    ok = APIClient().post(LOGIN, {"username": old.username, "password": long_password}, format="json")
    wrong = APIClient().post(LOGIN, {"username": old.username, "password": "x" * 100}, format="json")

    assert ok.status_code == 200, ok.content
    assert wrong.status_code == 401
    old.refresh_from_db()
    assert old.password.startswith("bcrypt_sha256$")  # upgraded on the first login
