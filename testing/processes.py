"""The service as a real process (`make run`'s runserver, or gunicorn), and a small HTTP client.

For tests that need what only a real process has: a file-based SQLite
database (pytest-django's is in memory), the in-process periodic thread
started by `config/wsgi.py`, the console a newcomer reads, a database that
can be stopped under it.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testing.stack import free_port

ROOT = Path(__file__).resolve().parent.parent
STRONG = "correct horse battery staple"


def service_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The embedded default (nothing configured), in `tmp`; `extra` on top."""
    dropped = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "KAFKA_BOOTSTRAP_SERVERS", "ADMIN_PASSWORD"}
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("KAFKA_")}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
            "LOG_DIR": str(tmp / "logs"),
            "ADMIN_PASSWORD": STRONG,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def fresh_python(code: str, env: dict[str, str]) -> str:
    """Run `code` in a fresh interpreter at the project root; its standard output (stderr shown on failure).

    For what this test process cannot show any more: it has imported every module already.
    """
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300
    )


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def console(self) -> str:
        """Everything the process printed (logs go to stdout, Django's and Python's warnings to stderr)."""
        return self.stdout_path.read_text(errors="replace") + self.stderr()


@contextmanager
def running(env: dict[str, str], tmp: Path, *, gunicorn: bool = False) -> Iterator[Server]:
    """runserver as `make run` starts it (or gunicorn as `make serve`), until the block ends."""
    port = free_port()
    if gunicorn:
        command = [
            str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", "1", "--timeout", "120",
        ]  # fmt: skip
    else:
        command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    stdout_path, stderr_path = tmp / f"server-{port}.stdout", tmp / f"server-{port}.stderr"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
    server = Server(f"http://127.0.0.1:{port}", process, stdout_path, stderr_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {server.console()[-2000:]}")
            try:
                if Http(server.base).get("/health/live").status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {server.console()[-2000:]}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Answer:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Http:
    """urllib with cookies: what a browser or an API client sends, nothing more."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> Answer:
        data = None
        all_headers = dict(headers or {})
        if json_body is not None:
            data = json.dumps(json_body).encode()
            all_headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        # The base is always http://127.0.0.1:<port> (this module starts the server).
        request = urllib.request.Request(  # noqa: S310
            self.base + path, data=data, method=method, headers=all_headers
        )
        try:
            with self.opener.open(request, timeout=timeout) as response:
                return Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.headers, exc.read())

    def get(self, path: str, **kwargs: Any) -> Answer:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Answer:
        return self.request("POST", path, **kwargs)

    def admin_login(self, username: str, password: str) -> Answer:
        page = self.get("/admin/login/?next=/admin/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
        assert token is not None, page.body[:500]
        return self.post(
            "/admin/login/?next=/admin/",
            form={"csrfmiddlewaretoken": token.group(1).decode(), "username": username, "password": password},
            headers={"Referer": self.base + "/admin/login/"},
        )
