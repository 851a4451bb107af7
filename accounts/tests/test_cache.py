"""The auth read-through cache (`accounts.cache`): cost, invalidation, outages, format.

Runs on the in-process cache by default and on Redis with `REDIS_URL`; the
outage tests point the cache at a closed port (connection refused at once).
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts import cache as auth_cache
from accounts.models import AuthSession, User
from accounts.tests.factories import UserFactory
from accounts.tests.support import CACHE_DOWN, PASSWORD, bearer
from core import read_through

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
REGISTER = "/api/v1/auth/register"
VERIFY = "/api/v1/auth/verify"
ME = "/api/v1/users/me"
USERS = "/api/v1/users"
STRONG = "correct horse battery staple"

#: A cold GET /users/me: the session, the user, its groups, and the `last_used_at` touch.
COLD_ME_QUERIES = 4
#: A cold POST /auth/verify: the session, the user, its groups (verify does not touch).
COLD_VERIFY_QUERIES = 3

ON_REDIS = bool(settings.REDIS_URL)  # the backend is a subclass that times calls (core/metrics_cache.py)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


def post(path: str, data: dict | None = None, **extra):
    return APIClient().post(path, data or {}, format="json", **extra)


def count_queries(func):
    with CaptureQueriesContext(connection) as ctx:
        result = func()
    return result, len(ctx.captured_queries)


# --- cost -------------------------------------------------------------------------------


def test_a_cold_cache_costs_a_fixed_number_of_queries_then_none(auth_client, user):
    cache.clear()

    response, cold = count_queries(lambda: auth_client.get(ME))

    assert response.status_code == 200
    assert response.json()["username"] == user.username
    assert cold == COLD_ME_QUERIES
    response, warm = count_queries(lambda: auth_client.get(ME))
    assert (response.status_code, warm) == (200, 0)


def test_verify_cold_then_warm(auth_client, user):
    access = auth_client.tokens["access"]
    cache.clear()

    response, cold = count_queries(lambda: post(VERIFY, {"token": access}))

    assert response.status_code == 200
    assert response.json()["user_id"] == str(user.id)
    assert cold == COLD_VERIFY_QUERIES
    response, warm = count_queries(lambda: post(VERIFY, {"token": access}))
    assert (response.status_code, warm) == (200, 0)
    # The entries verify filled serve /users/me too (only the touch is left to write).
    response, me = count_queries(lambda: auth_client.get(ME))
    assert (response.status_code, me) == (200, 1)


def test_a_fresh_login_leaves_the_cache_warm(user, login, django_assert_num_queries):
    tokens = login(user)

    with django_assert_num_queries(0):
        assert bearer(tokens["access"]).get(ME).status_code == 200
        assert post(VERIFY, {"token": tokens["access"]}).status_code == 200


# --- invalidation: a change is visible on the very next request ------------------------------


def test_patch_me_is_visible_at_once_without_a_query(auth_client, django_assert_num_queries):
    assert auth_client.get(ME).status_code == 200

    assert auth_client.patch(ME, {"full_name": "Fresh Name"}, format="json").status_code == 200

    with django_assert_num_queries(0):
        body = auth_client.get(ME).json()
    assert body["full_name"] == "Fresh Name"


def test_an_admin_role_change_is_visible_to_the_target_at_once(
    admin_client, auth_client, user, django_assert_num_queries
):
    assert auth_client.get(ME).json()["roles"] == ["user"]  # warm

    response = admin_client.patch(f"{USERS}/{user.id}", {"roles": ["user", "moderator"]}, format="json")
    assert response.status_code == 200

    with django_assert_num_queries(0):
        body = auth_client.get(ME).json()
    assert body["roles"] == ["moderator", "user"]
    assert body["is_admin"] is False


def test_an_admin_deactivation_ends_a_warm_session_at_once(admin_client, auth_client, user):
    access = auth_client.tokens["access"]
    assert auth_client.get(ME).status_code == 200
    assert post(VERIFY, {"token": access}).status_code == 200

    assert admin_client.patch(f"{USERS}/{user.id}", {"is_active": False}, format="json").status_code == 200

    assert auth_client.get(ME).status_code == 401
    assert post(VERIFY, {"token": access}).status_code == 401
    assert cache.get(f"auth:u:{user.id}")["is_active"] is False


def test_logout_of_a_warm_session_is_written_to_the_cache(auth_client):
    session_id = auth_client.tokens["session_id"]
    assert auth_client.get(ME).status_code == 200
    assert cache.get(f"auth:s:{session_id}")["revoked"] is False

    assert auth_client.post(LOGOUT).status_code == 204

    assert cache.get(f"auth:s:{session_id}")["revoked"] is True
    assert auth_client.get(ME).status_code == 401


# --- what the cache holds ------------------------------------------------------------------------


def test_the_cached_user_holds_no_password_hash(auth_client, user):
    assert auth_client.get(ME).status_code == 200

    entry = cache.get(f"auth:u:{user.id}")

    assert entry is not None
    assert entry["id"] == str(user.id)
    assert entry["username"] == user.username
    assert entry["roles"] == ["user"]
    password_hash = User.objects.get(id=user.id).password
    assert "password" not in entry
    assert password_hash not in json.dumps(entry)
    session = cache.get(f"auth:s:{auth_client.tokens['session_id']}")
    assert set(session) == {"user_id", "expires_at", "revoked"}
    refresh_hash = AuthSession.objects.get(id=auth_client.tokens["session_id"]).refresh_token_hash
    assert refresh_hash not in json.dumps(session)


@pytest.mark.skipif(not ON_REDIS, reason="needs REDIS_URL (the JSON serializer is django-redis's)")
def test_redis_holds_json_not_pickle(auth_client, user):
    from django_redis import get_redis_connection

    assert auth_client.get(ME).status_code == 200
    redis = get_redis_connection("default")

    for key in (f"auth:u:{user.id}", f"auth:s:{auth_client.tokens['session_id']}"):
        raw = redis.get(cache.make_key(key))
        assert raw is not None, key
        assert not raw.startswith(b"\x80"), raw  # a pickle starts with the PROTO opcode
        assert json.loads(raw) == cache.get(key)
        assert 0 < redis.ttl(cache.make_key(key)) <= settings.CACHE_TTL
    assert User.objects.get(id=user.id).password.encode() not in redis.get(
        cache.make_key(f"auth:u:{user.id}")
    )


# --- the cache down ------------------------------------------------------------------------------


def test_with_the_cache_down_me_still_answers(auth_client, user):
    with override_settings(CACHES=CACHE_DOWN):
        response = auth_client.get(ME)

    assert response.status_code == 200
    assert response.json()["id"] == str(user.id)


def test_with_the_cache_down_register_and_login_work():
    with override_settings(CACHES=CACHE_DOWN):
        registered = post(
            REGISTER, {"username": "offline", "email": "offline@example.com", "password": STRONG}
        )
        tokens = post(LOGIN, {"username": "offline", "password": STRONG})
        me = bearer(tokens.json()["access"]).get(ME) if tokens.status_code == 200 else None

    assert registered.status_code == 201, registered.content
    assert tokens.status_code == 200, tokens.content
    assert me is not None
    assert me.status_code == 200
    assert me.json()["username"] == "offline"


def test_with_the_cache_down_a_logged_out_session_stays_401(auth_client):
    with override_settings(CACHES=CACHE_DOWN):
        assert auth_client.post(LOGOUT).status_code == 204
        assert auth_client.get(ME).status_code == 401
        assert post(VERIFY, {"token": auth_client.tokens["access"]}).status_code == 401


def test_with_the_cache_down_a_deactivated_user_stays_401(admin_client, auth_client, user):
    with override_settings(CACHES=CACHE_DOWN):
        assert (
            admin_client.patch(f"{USERS}/{user.id}", {"is_active": False}, format="json").status_code == 200
        )
        assert auth_client.get(ME).status_code == 401
        assert post(VERIFY, {"token": auth_client.tokens["access"]}).status_code == 401


def test_a_session_revoked_during_an_outage_is_not_revived_by_the_stale_cache(auth_client):
    """The cache held "live"; the logout's cache write failed; the cache comes back: still 401."""
    session_id = auth_client.tokens["session_id"]
    assert auth_client.get(ME).status_code == 200
    assert cache.get(f"auth:s:{session_id}")["revoked"] is False

    with override_settings(CACHES=CACHE_DOWN):
        assert auth_client.post(LOGOUT).status_code == 204
    assert cache.get(f"auth:s:{session_id}")["revoked"] is False  # the stale entry survived the outage

    assert auth_client.get(ME).status_code == 401
    assert post(VERIFY, {"token": auth_client.tokens["access"]}).status_code == 401
    assert cache.get(f"auth:s:{session_id}")["revoked"] is True
    assert read_through.pending_writes() == 0


def test_a_failed_cache_write_of_a_logout_is_retried(auth_client, monkeypatch):
    """Only the write fails (the reads work): the next request rewrites the session from the database."""
    session_id = auth_client.tokens["session_id"]
    assert post(VERIFY, {"token": auth_client.tokens["access"]}).status_code == 200

    def broken(*args, **kwargs):
        raise ConnectionError("cache write failed")

    with monkeypatch.context() as patch:
        patch.setattr(auth_cache.cache, "set_many", broken)
        assert auth_client.post(LOGOUT).status_code == 204
    assert cache.get(f"auth:s:{session_id}")["revoked"] is False
    assert read_through.pending_writes() == 1

    assert post(VERIFY, {"token": auth_client.tokens["access"]}).status_code == 401
    assert auth_client.get(ME).status_code == 401
    assert read_through.pending_writes() == 0


def test_a_deactivation_during_an_outage_is_not_undone_by_the_stale_cache(admin_client, auth_client, user):
    assert auth_client.get(ME).status_code == 200
    assert cache.get(f"auth:u:{user.id}")["is_active"] is True

    with override_settings(CACHES=CACHE_DOWN):
        assert (
            admin_client.patch(f"{USERS}/{user.id}", {"is_active": False}, format="json").status_code == 200
        )

    assert auth_client.get(ME).status_code == 401
    assert cache.get(f"auth:u:{user.id}")["is_active"] is False


def test_other_users_keep_working_during_an_outage(auth_client, password, login):
    other = UserFactory(password=password)
    tokens = login(other)

    with override_settings(CACHES=CACHE_DOWN):
        assert auth_client.get(ME).status_code == 200
        assert bearer(tokens["access"]).get(ME).json()["id"] == str(other.id)


#: A password login of a known account from a known device, its user cached: the account and its
#: TOTP device, the lockout row, then in one transaction the user's row lock, its roles (for the
#: token), the known-device check, the session, `last_login`, the sessions over the limit, and the
#: audit record. No lockout reset when no failure was counted, no reload of the cached user.
LOGIN_QUERIES = 9


@pytest.mark.usefixtures("commit_per_request")
def test_a_login_costs_a_fixed_number_of_queries(user):
    def log_in() -> None:
        body = {"username": user.username, "password": PASSWORD}
        assert APIClient().post("/api/v1/auth/login", body, format="json").status_code == 200

    log_in()  # the device is known now, and the user cached after the commit

    with CaptureQueriesContext(connection) as queries:
        log_in()

    transaction_control = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT")
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(transaction_control)]
    assert len(statements) == LOGIN_QUERIES, "\n".join(statements)
