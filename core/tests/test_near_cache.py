"""The near cache (issue 26, `core.near_cache`): a warm read makes no round trip, and a revoked session
is never served as live, whoever revoked it and whatever happened to the tracking connection.

Redis only (`CLIENT TRACKING`); the other worker is played by a plain Redis client writing what another
process's cache write would write. Two real gunicorn workers are in `accounts/tests/test_workers.py`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from accounts import services
from accounts.tests.support import bearer
from core import read_through
from core.near_cache import NearCache

ME = "/api/v1/users/me"

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("commit_per_request"),
    pytest.mark.skipif(not settings.REDIS_URL, reason="the near cache is Redis' (set REDIS_URL)"),
]


@pytest.fixture
def near() -> NearCache:
    reader = read_through._reader()
    assert reader is not None
    assert reader.near is not None
    reader.near.clear()
    return reader.near


@pytest.fixture
def other_process() -> Iterator[redis.Redis]:
    """A client of the same Redis database that is not this process: its writes reach us only through Redis."""
    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    yield client
    client.close()


def _wait_usable(near: NearCache) -> None:
    deadline = time.monotonic() + 5
    while not near.usable():
        assert time.monotonic() < deadline, "the near cache never became usable"
        time.sleep(0.01)


def _session(user) -> tuple[services.TokenPair, str]:  # type: ignore[no-untyped-def]
    pair = services.session_open(user=user, ip="127.0.0.1", user_agent="tests")
    return pair, cache.make_key(f"auth:s:{pair.session_id}")


def _warm(near: NearCache, access: str) -> None:
    """Requests until the session is served from the near cache."""
    client = bearer(access)
    deadline = time.monotonic() + 5
    while True:
        _wait_usable(near)
        assert client.get(ME).status_code == 200
        if len(near) >= 3:  # user, session and touch marker
            return
        assert time.monotonic() < deadline, "the near cache was never filled"


def _revoked_elsewhere(other_process: redis.Redis, key: str, pair: services.TokenPair) -> None:
    """What another worker's `store_revoked_sessions` writes, through Redis only."""
    state = json.loads(other_process.get(key))
    other_process.set(key, json.dumps({**state, "revoked": True}), px=60_000)


def test_a_warm_read_is_served_without_a_round_trip(user, near, monkeypatch):
    pair, _key = _session(user)
    _warm(near, pair.access)
    reader = read_through._reader()
    assert reader is not None

    def no_redis(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a warm read went to Redis")

    monkeypatch.setattr(reader, "_read", no_redis)
    _wait_usable(near)
    assert bearer(pair.access).get(ME).status_code == 200


def test_a_revocation_by_another_process_is_seen_on_the_very_next_request(user, near, other_process):
    for _ in range(20):
        pair, key = _session(user)
        _warm(near, pair.access)
        _revoked_elsewhere(other_process, key, pair)
        response = bearer(pair.access).get(ME)  # at once: no sleep, no waiting for a background thread
        assert response.status_code == 401
        assert response.json()["code"] == "session_revoked"


def test_a_logout_in_this_process_drops_its_keys_at_once(user, near):
    pair, key = _session(user)
    _warm(near, pair.access)
    client = bearer(pair.access)
    assert client.post("/api/v1/auth/logout", {}, format="json").status_code == 204
    assert near.get([key]) is None
    assert client.get(ME).status_code == 401


def test_a_fill_that_raced_an_invalidation_is_not_kept(user, near, other_process):
    pair, key = _session(user)
    assert bearer(pair.access).get(ME).status_code == 200  # the session state is in Redis
    _wait_usable(near)
    ticket = near.ticket([key])
    stale = json.loads(other_process.get(key))
    _revoked_elsewhere(other_process, key, pair)
    _wait_usable(near)  # the invalidation is applied (before the stale value is stored)
    near.fill(ticket, [key], [stale], [60.0])
    assert near.get([key]) is None


def test_a_lost_tracking_connection_empties_it_and_reads_go_to_redis(user, near, other_process):
    pair, key = _session(user)
    _warm(near, pair.access)
    other_process.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    _revoked_elsewhere(other_process, key, pair)  # while this process has no tracking connection
    assert bearer(pair.access).get(ME).status_code == 401
    assert near.get([key]) is None


def test_silence_from_redis_stops_it(user, near, monkeypatch):
    pair, _key = _session(user)
    _warm(near, pair.access)
    assert near._connection is not None
    monkeypatch.setattr(near._connection, "send_command", lambda *args: None)  # pings go nowhere
    time.sleep(near.max_silence + 0.05)
    assert not near.usable()


def test_a_flush_empties_it(user, near, other_process):
    pair, key = _session(user)
    _warm(near, pair.access)
    other_process.flushdb()
    _wait_usable(near)
    assert near.get([key]) is None
    assert bearer(pair.access).get(ME).status_code == 200  # read from the database again, and live


def test_entries_never_outlive_their_key(user, near, other_process):
    pair, key = _session(user)
    _warm(near, pair.access)
    other_process.pexpire(key, 50)  # Redis drops it in 50 ms (an expiry is also an invalidation)
    near.clear()
    _warm(near, pair.access)
    time.sleep(0.1)
    assert near.get([key]) is None


def test_its_size_is_bounded(near):
    _wait_usable(near)
    keys = [cache.make_key(f"auth:t:{n}") for n in range(near.max_entries + 50)]
    near.fill(near.ticket(keys), keys, [1] * len(keys), [60.0] * len(keys))
    assert len(near) == near.max_entries
    assert near.get(keys[-1:]) == [1]
    assert near.get(keys[:1]) is None  # the oldest went first


def test_threads_check_it_at_once(near, other_process):
    """gthread workers: every request thread polls the tracking connection (`poll` objects are per thread)."""
    _wait_usable(near)
    key = cache.make_key("auth:t:threads")
    errors: list[BaseException] = []
    served = [0]

    def reader() -> None:
        try:
            for _ in range(300):
                if near.usable():
                    served[0] += 1
                near.get([key])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for thread in threads:
        thread.start()
    for n in range(50):
        other_process.set(key, n)  # invalidations arriving meanwhile
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert served[0] > 0


def test_a_forked_child_never_uses_its_parents_connection(near):
    _wait_usable(near)
    parents = near._connection
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running anything of the parent's
        try:
            near.usable()
            os.write(write_end, b"1" if near._connection is not parents and len(near) == 0 else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read_end, 1) == b"1"
    assert near._connection is parents
