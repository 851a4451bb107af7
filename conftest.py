"""Fixtures shared by every app's tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.test import TestCase
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _fast_hasher_and_clean_cache(settings: Any) -> Any:
    # bcrypt costs ~250 ms a check here; tests of hashing itself override this.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def commit_per_request(monkeypatch: Any) -> None:
    """Run `transaction.on_commit` callbacks (cache writes, queued tasks) at the end of each request.

    The `db` fixture keeps a test in one transaction that is rolled back, so
    the callbacks would never run; in production each request commits and they do.
    """
    original = APIClient.request

    def request(self: APIClient, **kwargs: Any) -> Any:
        with TestCase.captureOnCommitCallbacks(execute=True):
            return original(self, **kwargs)

    monkeypatch.setattr(APIClient, "request", request)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


PASSWORD = "a-long enough pass phrase"


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def user(db: Any) -> Any:
    return UserFactory(password=PASSWORD)


@pytest.fixture
def admin_user(db: Any) -> Any:
    return UserFactory(password=PASSWORD, roles=["user", "admin"])


@pytest.fixture
def login(api_client: APIClient) -> Callable[..., dict[str, Any]]:
    """Log in over the API; returns the token-pair body."""

    def _login(user: Any, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
        response = api_client.post(
            "/api/v1/auth/login", {"username": user.username, "password": password}, format="json", **extra
        )
        assert response.status_code == 200, response.content
        return response.json()

    return _login


@pytest.fixture
def auth_client(user: Any, login: Callable[..., dict[str, Any]]) -> APIClient:
    """A client carrying the access token of a fresh session of `user`."""
    tokens = login(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    client.tokens = tokens  # type: ignore[attr-defined]
    return client


@pytest.fixture
def admin_client(admin_user: Any, login: Callable[..., dict[str, Any]]) -> APIClient:
    tokens = login(admin_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    client.tokens = tokens  # type: ignore[attr-defined]
    return client
