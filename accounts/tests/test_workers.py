"""Revocation across processes: a real gunicorn (2 sync workers) on PostgreSQL and Redis.

Each worker keeps its own verified-token map and Redis connection, so these
check what a single process cannot: that a logout handled by one worker is
seen by the other on the very next request, and that a revocation whose
cache write was lost reaches every worker within `SESSION_STATE_TTL`.

Which worker answers: gunicorn's sync worker serves one connection at a time,
so a connection opened and left silent holds the worker that accepted it;
the next request then goes to the other worker, and finishing the held
connection's request is answered by the first. The access log (`%(p)s`, the
worker's pid) confirms it for every request.
"""

from __future__ import annotations

import socket
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import override_settings

from accounts import services
from accounts.tests.support import CACHE_DOWN
from testing.processes import child_database_url, environment, running

ME = "/api/v1/users/me"
LOGOUT = "/api/v1/auth/logout"
ON_REDIS = bool(settings.REDIS_URL)  # the backend is a subclass that times calls (core/metrics_cache.py)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not ON_REDIS,
        reason="needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL) shared by gunicorn and the test",
    ),
]


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    raw = b"".join(chunks)
    return int(raw.split(b" ", 2)[1]), raw.split(b"\r\n\r\n", 1)[-1]


def _request_bytes(method: str, path: str, token: str) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode()


@dataclass
class Server:
    port: int
    access_log: Path

    def held(self) -> socket.socket:
        """A connection opened and left silent: it holds the worker that accepted it."""
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def finish(self, sock: socket.socket, method: str, path: str, token: str) -> int:
        with sock:
            sock.sendall(_request_bytes(method, path, token))
            return _read_response(sock)[0]

    def request(self, method: str, path: str, token: str) -> int:
        return self.finish(self.held(), method, path, token)

    def pids(self) -> dict[str, str]:
        """The pid of the worker that answered each marked request (`?r=<mark>`)."""
        answered = {}
        for line in self.access_log.read_text().splitlines():
            pid, _, target = line.partition(" ")
            query = urllib.parse.urlsplit(target.split(" ")[1]).query
            mark = urllib.parse.parse_qs(query).get("r")
            if mark:
                answered[mark[0]] = pid
        return answered


@pytest.fixture
def gunicorn(transactional_db, tmp_path) -> Iterator[Server]:
    """gunicorn on the test database and the test Redis, with SESSION_STATE_TTL=2."""
    env = environment(
        DATABASE_URL=child_database_url(),
        SECRET_KEY=settings.SECRET_KEY,
        SESSION_STATE_TTL="2",
        LOG_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    access_log = tmp_path / "access.log"
    options = [
        "--workers", "2", "--worker-class", "sync", "--threads", "1",  # one request at a time: what `held` relies on
        "--timeout", "30", "--graceful-timeout", "2", "--access-logfile", str(access_log),
        "--access-logformat", "%(p)s %(r)s %(s)s",
    ]  # fmt: skip
    with running(env, tmp_path, gunicorn=True, options=options) as started:
        yield Server(started.port, access_log)


def _session(user) -> services.TokenPair:
    return services.session_open(user=user, ip="127.0.0.1", user_agent="test_workers")


def _warm_both_workers(server: Server, token: str, mark: str) -> None:
    """One request on each worker: each has the token in its map and a Redis connection."""
    hold = server.held()
    assert server.request("GET", f"{ME}?r={mark}-a", token) == 200
    assert server.finish(hold, "GET", f"{ME}?r={mark}-b", token) == 200


def test_a_logout_on_one_worker_is_seen_by_the_other_at_once_200_times_in_a_row(gunicorn, user):
    statuses = []
    for i in range(200):
        access = _session(user).access
        _warm_both_workers(gunicorn, access, f"{i}-warm")
        hold = gunicorn.held()  # the worker that will answer right after the logout
        assert gunicorn.request("POST", f"{LOGOUT}?r={i}-logout", access) == 204
        statuses.append(gunicorn.finish(hold, "GET", f"{ME}?r={i}-after", access))

    assert statuses == [401] * 200
    pids = gunicorn.pids()
    assert len({pids[f"{i}-warm-a"] for i in range(200)} | {pids[f"{i}-warm-b"] for i in range(200)}) == 2
    assert all(pids[f"{i}-warm-a"] != pids[f"{i}-warm-b"] for i in range(200))
    assert all(pids[f"{i}-after"] != pids[f"{i}-logout"] for i in range(200))


def test_a_revocation_whose_cache_write_failed_reaches_every_worker_within_the_bound(
    gunicorn, user, settings
):
    """The revoking process loses its cache write and never retries (it serves no more requests)."""
    bound = settings.SESSION_STATE_TTL = 2  # as the gunicorn above: every process of a deployment shares it
    pair = _session(user)
    _warm_both_workers(gunicorn, pair.access, "warm")

    with override_settings(CACHES=CACHE_DOWN):  # this process, not the workers, cannot write to Redis
        services.session_revoke(session_id=pair.session_id, user_id=user.id, reason="logout")
    revoked_at = time.monotonic()
    assert cache.get(f"auth:s:{pair.session_id}")["revoked"] is False  # every worker reads the stale state

    refused_after: list[float] = []
    for _ in range(2):  # each worker in turn holds a connection while the other answers
        with gunicorn.held() as hold:
            while gunicorn.request("GET", ME, pair.access) != 401:
                assert time.monotonic() - revoked_at < bound + 1, (
                    "the revocation did not reach a worker in time"
                )
                time.sleep(0.05)
            refused_after.append(time.monotonic() - revoked_at)
            assert gunicorn.finish(hold, "GET", ME, pair.access) == 401

    assert max(refused_after) < bound + 1
    assert cache.get(f"auth:s:{pair.session_id}")["revoked"] is True
    hold = gunicorn.held()
    assert gunicorn.request("GET", ME, pair.access) == 401
    assert gunicorn.finish(hold, "GET", ME, pair.access) == 401
