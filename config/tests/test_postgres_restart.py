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

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing.processes import STRONG, Http, migrate, running, service_env
from testing.stack import free_port

BIN_DIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not BIN_DIRS and shutil.which("pg_ctl") is None, reason="PostgreSQL's binaries are not installed"
    ),
]


@dataclass
class Postgres:
    bin_dir: Path
    data: Path
    port: int
    log: Path

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=60, check=False)
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed: {done.stderr or done.stdout}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-o",
            options,
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    bin_dir = Path(BIN_DIRS[-1]) if BIN_DIRS else Path(shutil.which("pg_ctl") or "").parent
    # Not under pytest's tmp_path: the postgres user must be able to reach it.
    home = Path(tempfile.mkdtemp(prefix="user-service-pg-"))
    home.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    server = Postgres(bin_dir, home / "data", free_port(), home / "postgres.log")
    try:
        server._run(
            str(bin_dir / "initdb"), "-D", str(server.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        server.start()
        yield server
    finally:
        with contextlib.suppress(RuntimeError):  # stopped already, or never started
            server.stop()
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
