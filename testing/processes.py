"""The project in child processes, for the tests: a fresh interpreter, `manage.py`, the service under
runserver (`make run`) or gunicorn (`make serve`); and a small HTTP client for the service.

For tests that need what only a real process has: a file-based SQLite database (pytest-django's is
in memory), modules this process has not imported yet, settings read from the environment at start,
the in-process periodic thread started by `config/wsgi.py`, the console a newcomer reads, several
workers sharing a database and a cache, a database that can be stopped under it. Everything runs at
the project root, on 127.0.0.1. The process whose output a thread collects is `testing.stack.Process`.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testing.stack import free_port

ROOT = Path(__file__).resolve().parent.parent
STRONG = "correct horse battery staple"


def environment(*drop: str, **extra: str) -> dict[str, str]:
    """This process's environment without the variables named in `drop`, with `extra` on top."""
    env = {name: value for name, value in os.environ.items() if name not in drop}
    env.update(extra)
    return env


def python(
    *args: str,
    env: dict[str, str],
    timeout: float = 120,
    stdin: str | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`python *args` in a fresh interpreter at the project root: its exit status and output, as text.

    `check`: a non-zero exit raises, as for a step that must work before the test can start.
    """
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def last_json_line(output: str) -> Any:
    """The JSON a child printed last (whatever it logged before)."""
    return json.loads(output.strip().splitlines()[-1])


def django_on_a_fresh_sqlite_file(folder: str) -> None:
    """In a child process, before it imports the project: Django on the embedded default, a fresh
    SQLite file in `folder`, migrated, with the tests' fast password hasher.

    For races on the file itself: pytest-django's SQLite test database is a shared in-memory one,
    which answers "table is locked" at once to a second writer instead of waiting as the file does.
    """
    os.environ.update(
        DATABASE_URL=f"sqlite:///{folder}/db.sqlite3",
        ALLOWED_HOSTS="testserver",
        LOG_DIR=folder,
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def child_database_url() -> str:
    """The URL of the database this test uses (pytest-django's `test_` one), for a child process."""
    from django.db import connection

    url = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    return urllib.parse.urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))


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
    done = python("-c", code, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def migrate(env: dict[str, str], timeout: float = 300) -> None:
    """`manage.py migrate` on the database `env` names; a failure raises."""
    python("manage.py", "migrate", "--noinput", "-v0", env=env, timeout=timeout, check=True)


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def console(self) -> str:
        """Everything the process printed (logs go to stdout, Django's and Python's warnings to stderr)."""
        return self.stdout_path.read_text(errors="replace") + self.stderr()


@contextmanager
def running(
    env: dict[str, str], tmp: Path, *, gunicorn: bool = False, options: Sequence[str] = ()
) -> Iterator[Server]:
    """runserver as `make run` starts it (or gunicorn as `make serve`), until the block ends.

    `options`: gunicorn's, after the defaults (the last of an option counts): `--workers 2`, an
    access log. The server answers `/health/live` before the block starts.
    """
    port = free_port()
    if gunicorn:
        command = [
            str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", "1", "--timeout", "120", *options,
        ]  # fmt: skip
    else:
        command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    stdout_path, stderr_path = tmp / f"server-{port}.stdout", tmp / f"server-{port}.stderr"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        # A group of its own: should it not stop, SIGKILL reaches gunicorn's workers too.
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=stdout, stderr=stderr, start_new_session=True
        )
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
        stop(process, timeout=15)


def stop(process: subprocess.Popen[bytes], *, timeout: float) -> None:
    """SIGTERM, and after `timeout` seconds SIGKILL to its whole group (gunicorn's workers too)."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
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
