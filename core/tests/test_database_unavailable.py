"""A database that fails under the service is a 503 with `Retry-After`, never a 500.

In process, on the embedded default: another connection holds a write lock
on a table, so SQLite's own "database table is locked" `OperationalError`
reaches the view, as it did under load (no mock). The PostgreSQL case, a
real server stopped and started again under a running service, is in
`config/tests/test_postgres_restart.py`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import OperationalError, connection
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from core.exceptions import server_error

PASSWORD = "a-long enough pass phrase"
on_sqlite = connection.vendor == "sqlite"
sqlite_only = pytest.mark.skipif(
    not on_sqlite,
    reason="locks a table of SQLite's test database; PostgreSQL: config/tests/test_postgres_restart.py",
)


@contextmanager
def table_locked(table: str) -> Iterator[None]:
    """A second connection to the test database writes `table` and keeps its transaction open."""
    raw = sqlite3.connect(connection.settings_dict["NAME"], uri=True, timeout=0, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute(f"DELETE FROM {table} WHERE 0 = 1")  # noqa: S608  (our own table name)
        yield
    finally:
        raw.execute("ROLLBACK")
        raw.close()


def assert_503(response) -> None:
    assert response.status_code == 503, response.content
    assert json.loads(response.content) == {
        "detail": "The service is temporarily unavailable. Try again shortly.",
        "code": "database_unavailable",
    }
    assert response["Retry-After"].isdigit()
    assert int(response["Retry-After"]) > 0


def unavailable_logs(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_locked_database_in_an_api_view_is_a_503_logged_once_with_its_cause(caplog):
    user = UserFactory(password=PASSWORD)
    with table_locked("accounts_user"), caplog.at_level(logging.INFO):
        response = APIClient().post(
            "/api/v1/auth/login", {"username": user.username, "password": PASSWORD}, format="json"
        )
    assert_503(response)
    assert response["Cache-Control"] == "no-store"
    errors = unavailable_logs(caplog)
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "locked" in errors[0].getMessage()
    assert "POST /api/v1/auth/login" in errors[0].getMessage()

    # The lock gone, the same request works: nothing was left broken.
    response = APIClient().post(
        "/api/v1/auth/login", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_locked_database_in_the_admin_is_a_503_not_a_500(caplog):
    staff = UserFactory(password=PASSWORD, roles=["user", "admin"])
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
    with table_locked("django_session"), caplog.at_level(logging.INFO):
        response = client.get("/admin/")
    assert_503(response)
    assert len(unavailable_logs(caplog)) == 1


def test_a_database_error_met_outside_any_view_is_a_503_too():
    """handler500 is what answers an exception raised in a middleware (sessions, auth)."""
    request = RequestFactory().get("/admin/")
    try:
        raise OperationalError("server closed the connection unexpectedly")
    except OperationalError:
        response = server_error(request)
    assert_503(response)

    try:
        raise ValueError("a bug")
    except ValueError:
        response = server_error(request)
    assert response.status_code == 500
