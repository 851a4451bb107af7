"""Drill 1: Redis stopped under load, then started again.

What users must see: no 5xx while the cache is gone (the database answers); a session revoked during
the outage stays refused, during it and after Redis returns with its stale entries; a locked account
stays locked; and once Redis is back, a warm `/users/me` costs no SQL again.
"""

from __future__ import annotations

import time

import pytest

from testing.stack import Reply, Service, running_stack

from .load import Load

pytestmark = pytest.mark.drill


def _read_me(tokens: list[str]):  # type: ignore[no-untyped-def]
    def step(service: Service, n: int) -> tuple[str, Reply]:
        return "/users/me", service.request("GET", "/api/v1/users/me", token=tokens[n % len(tokens)])

    return step


def _lock(service: Service, username: str) -> None:
    for _ in range(15):
        service.request("POST", "/api/v1/auth/login", {"username": username, "password": "not the password"})
    reply = service.request(
        "POST", "/api/v1/auth/login", {"username": username, "password": "a drill pass phrase"}
    )
    assert reply.status == 429, reply.body


@pytest.mark.parametrize("outage", ["stopped", "frozen"])
def test_redis_outage_under_load(stack_folder, outage):
    """`stopped`: the server ends and comes back empty. `frozen` (SIGSTOP): every call times out, and the
    entries written before the outage come back with it, stale."""
    with running_stack(stack_folder, log_statements=True) as stack:
        service = stack.gunicorn(workers=2)
        readers = [service.register_and_login(f"reader{i}")["access"] for i in range(6)]
        doomed = service.register_and_login("doomed")["access"]
        service.register_and_login("locked")
        _lock(service, "locked")
        for _ in range(10):  # both workers have the doomed session warm in Redis
            assert service.request("GET", "/api/v1/users/me", token=doomed).status == 200

        with Load(service, _read_me(readers), threads=4) as load:
            time.sleep(1.0)
            stack.redis.stop() if outage == "stopped" else stack.redis.freeze()
            time.sleep(0.5)
            assert service.request("POST", "/api/v1/auth/logout", {}, token=doomed).status == 204
            for _ in range(20):
                assert service.request("GET", "/api/v1/users/me", token=doomed).status == 401
            reply = service.request(
                "POST", "/api/v1/auth/login", {"username": "locked", "password": "a drill pass phrase"}
            )
            assert reply.status == 429, reply.body
            time.sleep(2.0)
            stack.redis.start() if outage == "stopped" else stack.redis.thaw()
            time.sleep(2.0)

        assert not load.errors, load.errors[:10]
        assert load.count(lambda status: status >= 500) == 0, load.statuses
        assert load.count(lambda status: status == 200) > 50, load.statuses

        # Back with its stale entries: the session revoked during the outage stays out, on every worker.
        for _ in range(40):
            assert service.request("GET", "/api/v1/users/me", token=doomed).status == 401
        reply = service.request(
            "POST", "/api/v1/auth/login", {"username": "locked", "password": "a drill pass phrase"}
        )
        assert reply.status == 429

        # Warm again: the same reads cost no SQL statement at all.
        for _ in range(3):
            for token in readers:
                assert service.request("GET", "/api/v1/users/me", token=token).status == 200
        before = len(stack.postgres.statements())
        for _ in range(5):
            for token in readers:
                assert service.request("GET", "/api/v1/users/me", token=token).status == 200
        time.sleep(0.3)
        new = stack.postgres.statements()[before:]
        assert new == [], new[:5]
