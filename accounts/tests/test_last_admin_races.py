"""Two administrators removing each other at the same moment leave one (API.md → Users, `last_admin`).

On PostgreSQL in this process (real transactions, the advisory lock of
`accounts.services.admins`); on the embedded default in a child process on a SQLite file
(IMMEDIATE transactions). The scenarios are `last_admin_race.SCENARIOS`.
"""

from __future__ import annotations

import pytest
from django.db import connection

from accounts.tests.last_admin_race import check, race
from testing.processes import environment, last_json_line, python

pytestmark = pytest.mark.slow


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: SQLite's shared in-memory test database refuses a second writer at once "
    "('database table is locked'); the embedded default's race runs in a child process below",
)
def test_two_administrators_removing_each_other_at_once_leave_one_on_postgresql():
    check(race(rounds=3))


def test_two_administrators_removing_each_other_at_once_leave_one_on_the_embedded_default(tmp_path):
    env = environment("DATABASE_URL", "REDIS_URL")

    result = python("-m", "accounts.tests.embedded_last_admin", str(tmp_path), "2", env=env, timeout=300)

    assert result.returncode == 0, result.stderr
    check(last_json_line(result.stdout))
