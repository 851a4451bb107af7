"""PostgreSQL stopped under a running service: 503 with `Retry-After`, then back by itself.

A throwaway PostgreSQL of this test's own (initdb / pg_ctl as the `postgres`
user, as scripts/services does) under gunicorn as production runs it, with
connections kept between requests (`CONN_MAX_AGE`): the database stops, every
request that needs it answers 503 JSON with `Retry-After` (the API, the admin),
each logged once with its cause; the database starts again and the same
process serves again, no restart. Runs wherever PostgreSQL's binaries are
installed (CI installs them), whichever database the rest of the suite uses.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.processes import STRONG, Http, migrate, running, service_env
from testing.stack import Postgres, postgres_bin

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL's binaries are not installed"),
]


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    # Not under pytest's tmp_path: the postgres user must be able to reach it.
    home = Path(tempfile.mkdtemp(prefix="user-service-pg-"))
    home.chmod(0o755)
    server = Postgres(home)
    try:
        yield server.start()
    finally:
        server.stop()  # stopped already, or never started: nothing to do
        shutil.rmtree(home, ignore_errors=True)


def test_the_service_answers_503_while_postgres_is_down_and_recovers_without_a_restart(postgres, tmp_path):
    env = service_env(tmp_path, DATABASE_URL=postgres.url, CONN_MAX_AGE="60")
    migrate(env)
    with running(env, tmp_path, gunicorn=True) as server:
        api, admin = Http(server.base), Http(server.base)
        user = {"username": "survivor", "email": "survivor@example.com", "password": STRONG}
        assert api.post("/api/v1/auth/register", json_body=user).status == 201
        credentials = {"username": "survivor", "password": STRONG}
        assert api.post("/api/v1/auth/login", json_body=credentials).status == 200
        assert admin.admin_login("admin", STRONG).status == 200
        assert admin.get("/admin/").status == 200

        postgres.stop()
        down = [
            api.post("/api/v1/auth/login", json_body=credentials),
            api.post(
                "/api/v1/auth/register", json_body={**user, "username": "other", "email": "o@example.com"}
            ),
            admin.get("/admin/"),
            admin.get("/admin/accounts/user/"),
        ]
        for answer in down:
            assert answer.status == 503, answer.body[:300]
            assert answer.json()["code"] == "database_unavailable"
            assert set(answer.json()) == {"detail", "code"}
            assert int(answer.headers["Retry-After"]) > 0
        assert Http(server.base).get("/health/ready").status == 503

        postgres.start()
        assert api.post("/api/v1/auth/login", json_body=credentials).status == 200
        assert admin.get("/admin/").status == 200
        assert Http(server.base).get("/health/ready").status == 200
        assert server.process.poll() is None  # the same process all along

    log = server.console()
    assert log.count("Database unavailable, answered 503") == len(down), log[-3000:]
    assert "Internal Server Error" not in log
    assert "Traceback" not in log
