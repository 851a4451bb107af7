"""The production process set, for real: gunicorn with 2 workers (gunicorn.conf.py) and a Celery
worker on a Redis broker, sharing one database, one LOG_DIR and one PROMETHEUS_MULTIPROC_DIR.

- counters add up across the gunicorn workers, and the Celery worker's counters show in the web's
  `/metrics`;
- a request's id is in its access line and in the log lines of the task it queued (issue 15);
- gunicorn.conf.py takes its settings from the environment and stops gracefully on SIGTERM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.mmap_dict import MmapedDict

from testing.metrics import Scrape
from testing.processes import migrate, python
from testing.stack import Process, celery_worker_command, free_port

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("gunicorn_stack")]

PROJECT = Path(__file__).resolve().parents[2]
STRONG = "Amber-Kettle-Orbit-7731"


class Stack:
    def __init__(self, root: Path, redis_url: str) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = root / "logs" / "user_service.log"
        self.metrics_dir = root / "metrics"
        base = redis_url.rsplit("/", 1)[0]
        drop = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "METRICS_TOKEN", "DJANGO_ENV"}
        self.env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("KAFKA_")}
        self.env.update(
            # Several processes write to one SQLite file: IMMEDIATE transactions wait for the lock
            # instead of failing on a read-to-write upgrade (issue 10 makes this the default).
            DATABASE_URL=f"sqlite:///{root / 'db.sqlite3'}?transaction_mode=IMMEDIATE",
            REDIS_URL=f"{base}/12",
            CELERY_BROKER_URL=f"{base}/13",
            LOG_DIR=str(root / "logs"),
            LOG_FORMAT="json",
            PROMETHEUS_MULTIPROC_DIR=str(self.metrics_dir),
            ADMIN_PASSWORD="Stack-Admin-Password-4410",
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            WEB_CONCURRENCY="2",
            GUNICORN_GRACEFUL_TIMEOUT="10",
            PYTHONUNBUFFERED="1",
        )
        self.web: Process | None = None
        self.worker: Process | None = None

    def start(self) -> Stack:
        migrate(self.env, timeout=180)
        self.web = Process(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "config.wsgi"], self.env, "web"
        )
        self.worker = Process(
            celery_worker_command("--pool", "solo", "--without-heartbeat", python=sys.executable),
            self.env,
            "worker",
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/health/ready", timeout=15).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or the workers still booting
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the web tier did not get ready:\n{self.web.output}")
        while time.monotonic() < deadline and "ready." not in self.worker.output:
            time.sleep(0.1)
        assert "ready." in self.worker.output, self.worker.output
        return self

    def scrape(self) -> Scrape:
        response = requests.get(f"{self.url}/metrics", timeout=10)
        assert response.status_code == 200
        return Scrape(response.text)

    def log_lines(self) -> list[dict[str, Any]]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line.startswith("{")]

    def stop(self) -> dict[str, int]:
        codes = {}
        for process in (self.worker, self.web):
            if process is not None:
                codes[process.name] = process.stop()
        return codes


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("stack"), redis_url).start()
    try:
        yield running
    finally:
        running.stop()


def _per_process(folder: Path, name: str, **labels: str) -> dict[str, float]:
    """The value of one series in each process's own file (what the scrape adds up)."""
    found: dict[str, float] = {}
    for path in folder.glob("counter_*.db"):
        for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            _metric, sample, sample_labels, _help = json.loads(key)
            if sample == name and all(sample_labels.get(k) == v for k, v in labels.items()) and value:
                found[path.name] = found.get(path.name, 0) + value
    return found


def test_counters_add_up_across_two_gunicorn_workers(stack):
    name = "user_service_logins_total"
    before = stack.scrape().value(name, result="failed")

    def fail_login() -> int:
        body = {"username": f"ghost-{uuid.uuid4().hex[:6]}", "password": "not-a-real-password"}
        return requests.post(f"{stack.url}/api/v1/auth/login", json=body, timeout=30).status_code

    results: list[int] = []
    # Threaded workers: one of them may accept a whole batch, so batches go on (at most six, under
    # the per-address login limit) until both workers have counted some.
    for _ in range(6):
        threads = [
            threading.Thread(target=lambda: [results.append(fail_login()) for _ in range(3)])
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if len(_per_process(stack.metrics_dir, name, result="failed")) >= 2:
            break
    assert results == [401] * len(results)

    after = stack.scrape()
    assert after.value(name, result="failed") - before == len(results)
    # Each worker counted its own share in its own file; the page is their sum.
    per_worker = _per_process(stack.metrics_dir, name, result="failed")
    assert len(per_worker) >= 2, per_worker
    assert sum(per_worker.values()) == after.value(name, result="failed")
    assert after.total("django_http_requests_total_by_view_transport_method_total", view="login") >= 12


def test_a_request_id_reaches_the_task_it_queued_and_the_access_log(stack):
    request_id = f"e2e-{uuid.uuid4().hex}"
    username = f"e2e{uuid.uuid4().hex[:8]}"
    published_before = stack.scrape().value("user_service_events_published_total")

    response = requests.post(
        f"{stack.url}/api/v1/auth/register",
        json={"username": username, "email": f"{username}@example.com", "password": STRONG},
        headers={"X-Request-ID": request_id},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    assert response.headers["X-Request-ID"] == request_id

    # With a broker, the web only queues the relay; the Celery worker publishes (to the events
    # log, without Kafka) under the id of the request that queued it.
    deadline = time.monotonic() + 30
    relayed: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not relayed:
        relayed = [
            line
            for line in stack.log_lines()
            if line["logger"] == "events" and username in line["message"] and "new_user" in line["message"]
        ]
        time.sleep(0.2)
    assert relayed, stack.worker.output
    assert relayed[0]["request_id"] == request_id
    worker_lines = [line for line in stack.worker.output.splitlines() if request_id in line]
    assert any('"logger": "events"' in line for line in worker_lines), stack.worker.output

    access = [
        json.loads(line)
        for line in stack.web.output.splitlines()
        if line.startswith("{") and '"gunicorn.access"' in line and request_id in line
    ]
    assert access, stack.web.output
    assert access[0]["path"] == "/api/v1/auth/register"
    assert access[0]["status"] == 201
    assert access[0]["method"] == "POST"

    # The worker's counter, in its own file, is in the web's page too.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if stack.scrape().value("user_service_events_published_total") > published_before:
            break
        time.sleep(0.2)
    assert stack.scrape().value("user_service_events_published_total") > published_before


def print_config(env: dict[str, str], *, check: bool = False) -> subprocess.CompletedProcess[str]:
    """gunicorn.conf.py as gunicorn reads it, under `env`: `--print-config`'s lines."""
    return python(
        "-m",
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "--print-config",
        "config.wsgi",
        env=env,
        timeout=60,
        check=check,
    )


def test_gunicorn_conf_reads_the_environment():
    env = {
        **os.environ,
        "WEB_CONCURRENCY": "3",
        "GUNICORN_THREADS": "4",
        "GUNICORN_TIMEOUT": "45",
        "GUNICORN_GRACEFUL_TIMEOUT": "20",
        "GUNICORN_KEEPALIVE": "7",
        "GUNICORN_BIND": "127.0.0.1:9",
        "PROMETHEUS_MULTIPROC_DIR": "/tmp/user-service-print-config",  # noqa: S108
    }
    result = print_config(env, check=True)
    settings = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        settings[key.strip()] = value.strip()
    assert settings["workers"] == "3"
    assert settings["threads"] == "4"
    assert settings["timeout"] == "45"
    assert settings["graceful_timeout"] == "20"
    assert settings["keepalive"] == "7"
    assert settings["bind"] == "['127.0.0.1:9']"
    assert settings["logger_class"] == "core.logging_gunicorn.ServiceLogger"
    assert "%(q)s" not in settings["access_log_format"]  # no query strings: they may carry codes
    assert "x-request-id" in settings["access_log_format"]


def test_a_malformed_gunicorn_setting_names_the_variable():
    result = print_config({**os.environ, "GUNICORN_TIMEOUT": "soon"})
    assert result.returncode != 0
    assert "GUNICORN_TIMEOUT must be an integer" in result.stdout + result.stderr


def test_sigterm_stops_the_web_tier_gracefully(stack):
    """Last in this module: the graceful stop of the stack the other tests used."""
    codes = stack.stop()
    assert codes["web"] == 0, stack.web.output
    assert "Shutting down: Master" in stack.web.output


def test_workers_are_threaded_by_default():
    """A login's bcrypt (GIL released) must not hold up the reads: 8 threads a worker unless told otherwise."""
    env = {key: value for key, value in os.environ.items() if key != "GUNICORN_THREADS"}
    result = print_config(
        {**env, "PROMETHEUS_MULTIPROC_DIR": "/tmp/user-service-print-config"},  # noqa: S108
        check=True,
    )
    settings = {
        key.strip(): value.strip()
        for key, _, value in (line.partition("=") for line in result.stdout.splitlines())
    }
    assert settings["threads"] == "8"
    assert settings["worker_class"] == "core.gunicorn_worker.SharedPollWorker"


@pytest.mark.parametrize(
    ("variables", "worker_class"),
    [
        ({"GUNICORN_THREADS": "1"}, "sync"),
        ({"GUNICORN_WORKER_CLASS": "gthread"}, "gthread"),
    ],
)
def test_the_worker_class_follows_the_environment(variables, worker_class):
    result = print_config(
        {**os.environ, **variables, "PROMETHEUS_MULTIPROC_DIR": "/tmp/user-service-print-config"},  # noqa: S108
        check=True,
    )
    lines = [line.split("=", 1) for line in result.stdout.splitlines() if "=" in line]
    assert {key.strip(): value.strip() for key, value in lines}["worker_class"] == worker_class


def test_a_worker_freezes_what_it_loaded(monkeypatch):
    """`post_worker_init`: what the worker loaded is frozen, so a full collection no longer walks it."""
    import gc
    import runpy

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/tmp/user-service-gc-freeze")  # noqa: S108
    hooks = runpy.run_path(str(PROJECT / "gunicorn.conf.py"))
    assert gc.get_freeze_count() == 0
    try:
        hooks["post_worker_init"](None)
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
