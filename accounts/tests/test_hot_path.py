"""The hot path's shortcuts keep every guarantee: the verified-token map, the raw MGET, short-lived live states.

Runs on the in-process cache and, with `REDIS_URL`, on Redis (the raw MGET is
Redis' only). Real processes (gunicorn workers) are in `test_workers.py`.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services, tokens
from accounts.models import AuthSession
from accounts.tests.support import CACHE_DOWN, bearer
from core import read_through

ME = "/api/v1/users/me"
VERIFY = "/api/v1/auth/verify"
LOGOUT = "/api/v1/auth/logout"
ON_REDIS = bool(settings.REDIS_URL)  # the backend is a subclass that times calls (core/metrics_cache.py)
redis_only = pytest.mark.skipif(
    not ON_REDIS, reason="the raw MGET and key lifetimes are Redis' (set REDIS_URL)"
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


@pytest.fixture(autouse=True)
def _clean_process_state():
    tokens.forget_verified_tokens()
    yield
    tokens.forget_verified_tokens()


def verify(access: str):
    return APIClient().post(VERIFY, {"token": access}, format="json")


def open_session(user, *, seconds: int | None = None) -> services.TokenPair:
    """A session (and its tokens) opened as login opens it; `seconds`: the session, and so the token, ends then."""
    pair = services.session_open(user=user, ip="127.0.0.1", user_agent="tests")
    if seconds is not None:
        end = timezone.now() + timedelta(seconds=seconds)
        AuthSession.objects.filter(id=pair.session_id).update(expires_at=end)
        access, *_ = tokens.make_token_pair(
            user_id=str(user.id), session_id=pair.session_id, roles=user.roles, session_expires_at=end
        )
        pair = services.TokenPair(access, pair.refresh, 0, pair.session_id)
    return pair


# --- the verified-token map ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_token_in_the_map_is_refused_from_its_exp_on(user):
    pair = open_session(user, seconds=2)
    client = bearer(pair.access)
    assert client.get(ME).status_code == 200  # verified once, now in the map

    time.sleep(max(0.0, tokens.access_claims(pair.access).exp - time.time()) + 0.05)

    response = client.get(ME)
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"
    assert verify(pair.access).status_code == 401


def test_the_map_is_emptied_when_the_signing_key_changes(user):
    pair = open_session(user)
    assert bearer(pair.access).get(ME).status_code == 200

    with override_settings(SECRET_KEY="another key " * 4):
        response = bearer(pair.access).get(ME)
        assert verify(pair.access).status_code == 401

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"
    assert bearer(pair.access).get(ME).status_code == 200  # the old key is back: verified afresh


def test_only_the_exact_token_string_hits_the_map(user):
    pair = open_session(user)
    assert bearer(pair.access).get(ME).status_code == 200
    header, payload, signature = pair.access.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"

    assert bearer(tampered).get(ME).status_code == 401
    assert verify(tampered).status_code == 401


def test_the_map_is_bounded(user, monkeypatch):
    monkeypatch.setattr(tokens, "VERIFIED_TOKENS_MAX", 3)
    pairs = [open_session(user) for _ in range(5)]

    for pair in pairs:
        assert bearer(pair.access).get(ME).status_code == 200

    assert tokens.verified_token_count() == 3
    assert all(bearer(pair.access).get(ME).status_code == 200 for pair in pairs)  # evicted: verified again


def test_a_revocation_reaches_a_token_in_the_map_at_once(user):
    pair = open_session(user)
    client = bearer(pair.access)
    assert client.get(ME).status_code == 200

    assert client.post(LOGOUT).status_code == 204

    assert client.get(ME).status_code == 401
    assert verify(pair.access).status_code == 401


def test_a_refresh_token_is_not_an_access_token(user):
    pair = open_session(user)

    assert bearer(pair.refresh).get(ME).status_code == 401
    assert verify(pair.refresh).status_code == 401


# --- the raw MGET ----------------------------------------------------------------------------


@redis_only
def test_a_redis_that_dropped_its_connections_is_read_again_without_the_database(
    auth_client, django_assert_num_queries
):
    assert auth_client.get(ME).status_code == 200
    redis = cache.client.get_client(write=True)
    redis.client_kill_filter(_type="normal", skipme=True)  # as a Redis restart does

    with django_assert_num_queries(0):
        assert auth_client.get(ME).status_code == 200


@redis_only
def test_the_raw_read_sees_what_django_redis_wrote(auth_client, user):
    assert auth_client.get(ME).status_code == 200
    keys = [f"auth:u:{user.id}", f"auth:s:{auth_client.tokens['session_id']}"]

    assert read_through.read_many(keys) == cache.get_many(keys)


def test_with_the_cache_down_the_read_is_a_miss_and_the_database_answers(auth_client, user):
    assert auth_client.get(ME).status_code == 200

    with override_settings(CACHES=CACHE_DOWN):
        assert read_through.read_many([f"auth:u:{user.id}"]) is read_through.FAILED
        assert auth_client.get(ME).status_code == 200
        assert auth_client.post(LOGOUT).status_code == 204
        assert auth_client.get(ME).status_code == 401


# --- a revocation lost to a cache hiccup: bounded by SESSION_STATE_TTL -------------------------------


@redis_only
def test_a_live_session_state_is_kept_briefly_a_revoked_one_long(auth_client):
    key = f"auth:s:{auth_client.tokens['session_id']}"
    assert auth_client.get(ME).status_code == 200
    assert 0 < cache.ttl(key) <= settings.SESSION_STATE_TTL

    assert auth_client.post(LOGOUT).status_code == 204

    assert cache.ttl(key) > settings.SESSION_STATE_TTL
    assert cache.get(key)["revoked"] is True


@pytest.mark.slow
def test_a_revocation_whose_cache_write_was_lost_is_seen_within_the_bound(user, settings):
    """The database says revoked, the cache still says live, no process will retry: refused within the bound."""
    settings.SESSION_STATE_TTL = 1
    pair = open_session(user)
    client = bearer(pair.access)
    assert client.get(ME).status_code == 200
    # A revocation whose cache write was lost by a process that then died: only the database knows.
    AuthSession.objects.filter(id=pair.session_id).update(revoked_at=timezone.now(), revoke_reason="logout")
    assert client.get(ME).status_code == 200  # the stale "live" entry, for now

    time.sleep(settings.SESSION_STATE_TTL + 0.1)

    assert client.get(ME).status_code == 401
    assert verify(pair.access).status_code == 401
    assert cache.get(f"auth:s:{pair.session_id}")["revoked"] is True
