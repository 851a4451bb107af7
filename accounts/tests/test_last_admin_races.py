"""Two administrators removing each other at the same moment leave one (API.md → Users, `last_admin`).

On PostgreSQL in this process (real transactions, the advisory lock of
`accounts.services.admins`); on the embedded default in a child process on a SQLite file
(IMMEDIATE transactions). The scenarios are `last_admin_race.SCENARIOS`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from accounts.tests.last_admin_race import check, race

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


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
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}

    result = subprocess.run(
        [sys.executable, "-m", "accounts.tests.embedded_last_admin", str(tmp_path), "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    check(json.loads(result.stdout.strip().splitlines()[-1]))
