"""The embedded default as `make run` starts it: quiet, and sound under concurrent load.

A real process (`manage.py migrate`, then `manage.py runserver`, as the
Makefile's `run` target does) on a SQLite file, with the in-process periodic
thread (`config/startup.py`) relaying the outbox beside the requests.
pytest-django's in-memory database is not what `make run` uses, hence the
subprocess.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testing.processes import STRONG, Http, Server, migrate, running, service_env

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("embedded_server")]

STRESS_SECONDS = 22  # the periodic relay runs ~10 s after start, then every 10 s


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedded")


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[Server]:
    env = service_env(
        workdir,
        # Many requests from one address: the per-address limits would answer 429s.
        THROTTLE_LOGIN_IP="100000/min",
        THROTTLE_REGISTER_IP="100000/min",
        THROTTLE_PASSWORD_RESET_IP="100000/min",
    )
    migrate(env)
    with running(env, workdir) as started:
        yield started


def warnings_in(text: str) -> list[str]:
    return [
        line
        for line in text.splitlines()
        if "warn" in line.lower() and "This is a development server" not in line
    ]


def test_make_run_starts_and_registers_without_a_warning(server: Server):
    """No `staticfiles` warning at start, no kombu "No hostname was supplied" at the first task."""
    answer = Http(server.base).post(
        "/api/v1/auth/register",
        json_body={"username": "first", "email": "first@example.com", "password": STRONG},
    )
    assert answer.status == 201
    deadline = time.monotonic() + 10
    while "send_notification_emails" not in server.console() and time.monotonic() < deadline:
        time.sleep(0.1)  # the welcome mail's task ran, in-process, after the commit
    log = server.console()
    assert "send_notification_emails" in log
    assert "No directory at" not in log
    assert "No hostname was supplied" not in log
    assert warnings_in(log) == []


def _register_and_login(http: Http, tag: str) -> dict[str, str]:
    name = f"u{tag}{uuid.uuid4().hex[:10]}"
    answer = http.post(
        "/api/v1/auth/register",
        json_body={"username": name, "email": f"{name}@example.com", "password": STRONG},
    )
    assert answer.status == 201, answer.body
    answer = http.post("/api/v1/auth/login", json_body={"username": name, "password": STRONG})
    assert answer.status == 200, answer.body
    return {"username": name, **answer.json()}


def test_threads_hammering_the_embedded_default_see_no_5xx(server: Server, workdir: Path):
    http = Http(server.base)
    seeds = [_register_and_login(http, "seed") for _ in range(4)]
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + STRESS_SECONDS

    def record(kind: str, status: int) -> None:
        with lock:
            statuses[kind][status] += 1

    def register_loop(index: int) -> None:
        while time.monotonic() < stop_at:
            name = f"r{index}x{uuid.uuid4().hex[:10]}"
            body = {"username": name, "email": f"{name}@example.com", "password": STRONG}
            record("register", Http(server.base).post("/api/v1/auth/register", json_body=body).status)

    def login_loop(index: int) -> None:
        seed = seeds[index % len(seeds)]
        while time.monotonic() < stop_at:
            body = {"username": seed["username"], "password": STRONG}
            record("login", Http(server.base).post("/api/v1/auth/login", json_body=body).status)

    def refresh_loop(index: int) -> None:
        refresh = _register_and_login(Http(server.base), f"f{index}")["refresh"]
        while time.monotonic() < stop_at:
            answer = Http(server.base).post("/api/v1/auth/refresh", json_body={"refresh": refresh})
            record("refresh", answer.status)
            if answer.status == 200:
                refresh = answer.json()["refresh"]

    def notifications_loop(index: int) -> None:
        bearer = {"Authorization": f"Bearer {seeds[index % len(seeds)]['access']}"}
        client = Http(server.base)
        while time.monotonic() < stop_at:
            record("notifications", client.get("/api/v1/notifications", headers=bearer).status)
            record("unread-count", client.get("/api/v1/notifications/unread-count", headers=bearer).status)
            record("read-all", client.post("/api/v1/notifications/read-all", headers=bearer).status)

    def guarded(target: Callable[[int], None], index: int) -> Callable[[], None]:
        def run() -> None:
            try:
                target(index)
            except Exception as exc:  # a dropped connection is a failure too
                with lock:
                    errors.append(f"{target.__name__}: {type(exc).__name__}: {exc}")

        return run

    loops = [register_loop, register_loop, login_loop, login_loop, refresh_loop, refresh_loop]
    loops += [notifications_loop, notifications_loop]
    threads = [threading.Thread(target=guarded(loop, i)) for i, loop in enumerate(loops)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=STRESS_SECONDS + 120)

    assert errors == []
    server_errors = {kind: {s: n for s, n in counts.items() if s >= 500} for kind, counts in statuses.items()}
    assert all(not found for found in server_errors.values()), (server_errors, server.console()[-4000:])
    for kind, ok in [("register", 201), ("login", 200), ("refresh", 200), ("notifications", 200)]:
        assert statuses[kind][ok] > 0, (kind, statuses[kind])
    assert statuses["read-all"][204] > 0
    # The periodic thread relayed the outbox while the requests ran.
    with sqlite3.connect(workdir / "db.sqlite3") as db:
        published = db.execute(
            "SELECT COUNT(*) FROM notifications_outboxevent WHERE published_at IS NOT NULL"
        ).fetchone()[0]
    assert published > 0
    assert "database is locked" not in server.console()
