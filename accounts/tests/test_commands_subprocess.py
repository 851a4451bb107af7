"""The admin commands as real processes: exit statuses, stdin, stderr, and the hashing pool under manage.py.

A subprocess cannot see the test database, so these run against a fresh SQLite
file, migrated once for the module. Independent commands run side by side to
keep the module at a few seconds.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from typing import Any

import pytest

from testing.processes import environment, migrate, python

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("commands_subprocess")]

STRONG = "correct horse battery staple"
PASSLIB_4 = "$2b$04$4sI3Yo8XZYmQs4oeCE5he.EORBhYyIwDyCqEyv4ZlfiZVwpPetWG."


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("commands")
    env = environment(
        "REDIS_URL",
        "ADMIN_PASSWORD",
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        LOG_DIR=str(tmp),
        DJANGO_SUPERUSER_PASSWORD=STRONG,  # for createsuperuser --noinput
    )
    migrate(env, timeout=120)
    return env


def manage_all(
    env: dict[str, str], *commands: tuple[list[str], str | None]
) -> list[subprocess.CompletedProcess]:
    """Run `manage.py` commands one after another, each with its stdin; their results in order.

    One at a time: run at once on a loaded machine they made this test flaky, and
    concurrency is not what it checks.
    """
    return [python("manage.py", *args, env=env, stdin=stdin or "") for args, stdin in commands]


def db_rows(env: dict[str, str], sql: str) -> list[Any]:
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///")) as db:
        return db.execute(sql).fetchall()


def test_failures_exit_non_zero_and_say_why_on_stderr(env):
    bad_rows = "\n".join(
        [
            json.dumps({"username": "ok1", "email": "ok1@example.com", "password_hash": PASSLIB_4}),
            json.dumps({"username": "bad", "email": "not-an-email", "password_hash": PASSLIB_4}),
        ]
    )
    create, delete, register, delete_one = manage_all(
        env,
        (["bulk_create_users", "-"], bad_rows),
        (["bulk_delete_users", "-"], '["nobody"]'),
        (["register_user", "--username", "weak", "--email", "weak@example.com", "--password-stdin"], "123\n"),
        (["delete_user", "nobody", "--yes"], None),
    )

    assert create.returncode == 1, create.stderr
    assert create.stderr.splitlines() == [
        "line 2: email: Enter a valid email address.",
        "CommandError: 1 of 2 rows failed.",
    ]  # no progress bar: stderr is not a terminal
    assert "Nothing was written" in create.stdout
    assert delete.returncode == 1
    assert delete.stderr.splitlines() == ["line 1: Not found: nobody.", "CommandError: 1 of 1 rows failed."]
    assert register.returncode == 1
    assert "password: This password is too short." in register.stderr
    assert delete_one.returncode == 1
    assert "No user 'nobody'." in delete_one.stderr
    assert db_rows(env, "select count(*) from accounts_user") == [(0,)]
    assert db_rows(env, "select count(*) from notifications_outboxevent") == [(0,)]


def test_successes_exit_zero(env):
    rows = "\n".join(
        json.dumps({"username": f"p{n}", "email": f"p{n}@example.com", "password": f"{STRONG} {n}"})
        for n in range(2)
    )
    create, superuser = manage_all(
        env,
        # Plaintext passwords hashed by a pool of 2 processes forked from manage.py.
        (["bulk_create_users", "-", "--workers", "2"], rows),
        (["createsuperuser", "--noinput", "--username", "root", "--email", "root@example.com"], None),
    )
    assert create.returncode == 0, create.stderr
    assert create.stderr == ""
    assert create.stdout.splitlines() == ["2 rows checked: 2 good, 0 bad.", "Created 2 users."]
    assert superuser.returncode == 0, superuser.stderr

    # The user list, a bulk hard delete and a soft delete.
    listing, bulk_delete, soft = manage_all(
        env,
        (["list_users", "--json"], None),
        (["bulk_delete_users", "-", "--hard"], '["p1"]'),
        (["delete_user", "p0", "--yes"], None),
    )
    assert listing.returncode == 0, listing.stderr
    users = {row["username"]: row for row in json.loads(listing.stdout)}
    assert users["root"]["is_admin"] is True
    assert users["p0"]["roles"] == ["user"]
    assert bulk_delete.returncode == 0, bulk_delete.stderr
    assert soft.returncode == 0, soft.stderr
    hashes = dict(db_rows(env, "select username, password from accounts_user"))
    assert set(hashes) == {"root", "p0"}
    assert hashes["p0"].startswith("bcrypt_sha256$")  # the production hasher, in the workers
    assert hashes["root"].startswith("bcrypt_sha256$")  # DJANGO_SUPERUSER_PASSWORD was used
    assert db_rows(env, "select deleted_at is not null from accounts_user where username = 'p0'") == [(1,)]
