"""No second factor works twice, whoever presents it at the same moment (API.md, MFA).

- On PostgreSQL in this process, and on the embedded default (a SQLite file, threads) in a child
  process: the scenarios of `mfa_race.SCENARIOS`, each round one 200, one 401, one session.
- Two gunicorn workers (PostgreSQL and Redis) handed the same code at once accept it once: each
  request is sent on a connection that holds its own worker (gunicorn's sync worker serves one
  connection at a time), both released together; the access log's pids prove two workers answered.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pyotp
import pytest
from django.conf import settings
from django.db import connection

from accounts.models import AuthSession
from accounts.services.mfa_challenges import PURPOSE_LOGIN, mfa_challenge_open
from accounts.tests.factories import UserFactory
from accounts.tests.mfa_race import check, race
from accounts.tests.mfa_support import mfa_on
from accounts.tests.test_workers import Server, gunicorn  # noqa: F401 (the fixture: gunicorn, 2 sync workers)
from testing.processes import environment, last_json_line, python

pytestmark = pytest.mark.slow
ON_POSTGRES_AND_REDIS = connection.vendor == "postgresql" and bool(settings.REDIS_URL)


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: SQLite's shared in-memory test database refuses a second writer at once; "
    "the embedded default's race runs in a child process below",
)
def test_each_code_and_token_works_once_under_concurrent_requests_on_postgresql():
    check(race(rounds=3))


def test_each_code_and_token_works_once_under_concurrent_requests_on_the_embedded_default(tmp_path):
    result = python(
        "-m", "accounts.tests.embedded_mfa_race", str(tmp_path), "3", env=environment("DATABASE_URL", "REDIS_URL"),
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    check(last_json_line(result.stdout))


def _post_bytes(path: str, body: dict[str, str], mark: str) -> bytes:
    raw = json.dumps(body).encode()
    head = (
        f"POST {path}?r={mark} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(raw)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + raw


def _status(
    sock: socket.socket, payload: bytes, out: list[int], index: int, start: threading.Barrier
) -> None:
    with sock:
        start.wait(timeout=10)
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    out[index] = int(b"".join(chunks).split(b" ", 2)[1])


@pytest.mark.postgres
@pytest.mark.skipif(
    not ON_POSTGRES_AND_REDIS, reason="needs PostgreSQL and Redis shared by gunicorn and the test"
)
def test_two_gunicorn_workers_handed_the_same_code_at_once_accept_it_once(gunicorn: Server):  # noqa: F811
    rounds = 10
    for i in range(rounds):
        user = UserFactory(username=f"worker-racer{i}")
        code = pyotp.TOTP(mfa_on(user)).now()
        bodies = [
            {"mfa_token": mfa_challenge_open(user=user, amr=["pwd"], purpose=PURPOSE_LOGIN)[1], "code": code}
            for _ in range(2)
        ]
        # Each connection holds the worker that accepted it; then both requests go at once.
        held = [gunicorn.held()]
        time.sleep(0.2)  # the first worker has accepted its connection (and finished the last round)
        held.append(gunicorn.held())
        time.sleep(0.2)  # so the second connection goes to the other worker
        statuses: list[int] = [0, 0]
        start = threading.Barrier(2)
        threads = [
            threading.Thread(
                target=_status,
                args=(
                    held[n],
                    _post_bytes("/api/v1/auth/mfa/verify", bodies[n], f"{i}-{n}"),
                    statuses,
                    n,
                    start,
                ),
            )
            for n in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(statuses) == [200, 401], (i, statuses)
        assert AuthSession.objects.filter(user=user).count() == 1
    pids = gunicorn.pids()
    assert all(pids[f"{i}-0"] != pids[f"{i}-1"] for i in range(rounds)), pids  # two workers, every round
