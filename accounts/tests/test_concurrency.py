"""Races between requests: real transactions, one database connection per thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import AuthSession
from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD
from testing.races import run_at_once

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/users/me"

# Real commits (the roles come back after the flush: accounts.apps.ensure_default_roles).
transactional = pytest.mark.django_db(transaction=True)
on_postgres = connection.vendor == "postgresql"


def login(user: Any) -> dict[str, Any]:
    response = APIClient().post(LOGIN, {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def refresh_status(token: str) -> Callable[[], int]:
    return lambda: APIClient().post(REFRESH, {"refresh": token}, format="json").status_code


@transactional
@pytest.mark.postgres
@pytest.mark.skipif(
    not on_postgres,
    reason="SQLite's shared in-memory test database answers "
    "'database table is locked' at once to a second writer",
)
def test_a_refresh_token_raced_twice_is_spent_once():
    user = UserFactory(password=PASSWORD)
    for _ in range(10):
        tokens = login(user)

        statuses = run_at_once([refresh_status(tokens["refresh"])] * 2)

        assert sorted(statuses) == [200, 401], statuses
        # The loser presented a spent token: the session is treated as stolen.
        session = AuthSession.objects.get(id=tokens["session_id"])
        assert session.revoked_at is not None
        assert refresh_status(tokens["refresh"])() == 401


@transactional
@pytest.mark.postgres
@pytest.mark.skipif(not on_postgres, reason="needs PostgreSQL: SQLite has no row locks")
def test_concurrent_logins_stay_within_the_session_limit(settings):
    settings.MAX_ACTIVE_SESSIONS = 10
    for _ in range(3):
        user = UserFactory(password=PASSWORD)

        def attempt(user: Any = user) -> int:
            response = APIClient().post(
                LOGIN, {"username": user.username, "password": PASSWORD}, format="json"
            )
            return response.status_code

        statuses = run_at_once([attempt] * 12)

        assert statuses == [200] * 12, statuses
        assert AuthSession.objects.filter(user=user).count() == 12
        assert AuthSession.objects.active().filter(user=user).count() == 10
