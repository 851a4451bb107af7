"""Drill 4: PostgreSQL stopped and started again under load.

While the database is gone, what needs it answers 503 with `Retry-After` (never a 500), what the cache
can serve still answers (a warm `/users/me`), and once it is back the same gunicorn processes serve
again: no restart.
"""

from __future__ import annotations

import itertools
import time

import pytest

from testing.stack import Reply, Service, running_stack

from .load import Load

pytestmark = pytest.mark.drill

PASSWORD = "a drill pass phrase"
_names = itertools.count()


def _mixed(tokens: list[str]):  # type: ignore[no-untyped-def]
    def step(service: Service, n: int) -> tuple[str, Reply]:
        kind = n % 3
        if kind == 0:
            path, reply = (
                "/users/me",
                service.request("GET", "/api/v1/users/me", token=tokens[n % len(tokens)]),
            )
        elif kind == 1:
            path = "/auth/login"
            reply = service.request(
                "POST", "/api/v1/auth/login", {"username": "steady", "password": PASSWORD}
            )
        else:
            name = f"newcomer{next(_names)}"
            path = "/auth/register"
            reply = service.request(
                "POST",
                "/api/v1/auth/register",
                {"username": name, "email": f"{name}@example.com", "password": PASSWORD},
            )
        if reply.status == 503 and not reply.headers.get("Retry-After", "").isdigit():
            reply = Reply(599, reply.headers, b"503 without a Retry-After: " + reply.body)
        return path, reply

    return step


def test_postgres_outage_under_load(stack_folder):
    with running_stack(stack_folder) as stack:
        service = stack.gunicorn(workers=2)
        tokens = [service.register_and_login(f"reader{i}")["access"] for i in range(4)]
        service.register_and_login("steady")
        for token in tokens * 3:  # warm: these reads now come from the cache
            assert service.request("GET", "/api/v1/users/me", token=token).status == 200

        with Load(service, _mixed(tokens), threads=3) as load:
            time.sleep(1.0)
            stack.postgres.stop("immediate")
            time.sleep(3.0)
            during = dict(load.statuses)
            stack.postgres.start()
            time.sleep(3.0)

        assert not load.errors, load.errors[:10]
        assert load.count(lambda status: status >= 500 and status != 503) == 0, load.statuses
        assert any(status == 503 for (_, status) in during), during
        assert any(path == "/users/me" and status == 200 for (path, status) in during), during

        # Back, with the same web processes: every kind of request succeeds again.
        assert service.running
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if (
                service.request(
                    "POST", "/api/v1/auth/login", {"username": "steady", "password": PASSWORD}
                ).status
                == 200
            ):
                break
            time.sleep(0.3)
        for i in range(6):  # enough to reach both workers
            assert service.register_and_login(f"after{i}")["access"]
