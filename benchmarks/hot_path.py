#!/usr/bin/env python3
"""Hot-path benchmark: GET /api/v1/users/me against the stock SimpleJWT way, and login against bcrypt.

    python benchmarks/hot_path.py [--url URL] [--duration 10] [--connections 16] [--workers 2]

Without --url it starts the service itself under gunicorn on the PostgreSQL and
Redis named by DATABASE_URL and REDIS_URL (both required), after `manage.py
migrate`, on free loopback ports:

- the service as deployed (`config.wsgi`, `config.settings`), and
- the same code with `benchmarks.stock_settings`, which only adds
  `/bench/stock/me`: the same body, authenticated by stock SimpleJWT
  (one user query per request, no session check).

It creates two throwaway users (one to read with, one to log in with), loads
both endpoints in turn with wrk (`benchmarks/bearer.lua`), times sequential
logins against Django's `check_password` with the production hasher, prints one
JSON document on stdout (progress goes to stderr) and stops what it started.

With --url it measures a service already running there (users made through the
API); the baseline is measured when --stock-url (or URL/bench/stock/me) answers.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "benchmarks"
LUA = HERE / "bearer.lua"
ME_PATH = "/api/v1/users/me"
STOCK_PATH = "/bench/stock/me"
LOGIN_PATH = "/api/v1/auth/login"
REGISTER_PATH = "/api/v1/auth/register"
HEALTH_PATH = "/health/live"
SERVICES_HINT = 'eval "$(scripts/services start)"'
SPEEDUP_TARGET = 2.0
LOGIN_TARGET = 1.1
NOISE_PCT = 10  # other processes' share of the CPUs above which a round is flagged


def log(message: str) -> None:
    print(f"[hot_path] {message}", file=sys.stderr, flush=True)


def fail(message: str) -> None:
    print(f"hot_path: {message}", file=sys.stderr)
    raise SystemExit(2)


def ensure_project_python() -> None:
    """Re-run under the project's venv when this interpreter lacks Django."""
    try:
        import django  # noqa: F401
    except ImportError:
        venv_python = ROOT / ".venv" / "bin" / "python"
        if venv_python.exists() and Path(sys.executable) != venv_python:
            os.execv(venv_python, [str(venv_python), *sys.argv])  # noqa: S606
        fail("Django is not importable: run `make test` once (it creates .venv), then .venv/bin/python")


def redact(url: str) -> str:
    """A URL without its password."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


# --- HTTP --------------------------------------------------------------------


def http(
    method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None, timeout: float = 10
) -> tuple[int, Any]:
    if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
        raise ValueError(f"not an http(s) URL: {url}")
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw[:200].decode(errors="replace")


def login(base: str, username: str, password: str) -> dict[str, Any]:
    status, body = http("POST", base + LOGIN_PATH, {"username": username, "password": password})
    if status != 200:
        fail(f"login as {username} failed: {status} {body}")
    return body


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- Servers -----------------------------------------------------------------


@dataclass
class Gunicorn:
    """One gunicorn of `config.wsgi` on a loopback port, in its own process group."""

    name: str
    settings_module: str
    args: argparse.Namespace
    env: dict[str, str]
    log_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        self.log_path = self.log_dir / f"gunicorn-{self.name}.log"
        command = [
            sys.executable, "-m", "gunicorn", "config.wsgi",
            "--chdir", str(ROOT),
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.args.workers),
            "--worker-class", self.args.worker_class,
            "--threads", str(self.args.threads),
            "--timeout", "30",
            "--graceful-timeout", "5",
            "--log-level", "warning",
        ]  # fmt: skip
        env = {**self.env, "DJANGO_SETTINGS_MODULE": self.settings_module}
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                fail(f"gunicorn ({self.name}) exited with {self.process.returncode}:\n{self.tail()}")
            with contextlib.suppress(OSError):
                if http("GET", self.base + HEALTH_PATH, timeout=2)[0] == 200:
                    log(f"gunicorn {self.name} ({self.settings_module}) ready on {self.base}")
                    return
            time.sleep(0.2)
        fail(f"gunicorn ({self.name}) did not answer {HEALTH_PATH} within 60 s:\n{self.tail()}")

    def tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


# --- Load --------------------------------------------------------------------


def wrk_version() -> str:
    result = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10, check=False)
    return (result.stdout or result.stderr).split("Copyright")[0].strip()


def git_commit() -> str | None:
    result = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return result.stdout.strip() or None


def run_wrk(url: str, token: str, duration: int, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        "wrk", "-t", str(args.wrk_threads), "-c", str(args.connections), "-d", f"{duration}s",
        "--timeout", "5s", "--latency", "-s", str(LUA), url,
    ]  # fmt: skip
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=False,
        env={**os.environ, "BENCH_TOKEN": token},
    )
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return dict(json.loads(line.removeprefix("BENCH_JSON ")))
    fail(f"wrk gave no result (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    raise AssertionError  # unreachable


def cpu_busy_percent(seconds: float = 2.0) -> float | None:
    """How busy all CPUs were over the next few seconds (Linux /proc/stat), before any load."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total1, idle1 = sample()
        time.sleep(seconds)
        total2, idle2 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return round(100 * (1 - (idle2 - idle1) / max(1, total2 - total1)), 1)


SERVICE_PROCESSES = ("postgres", "redis-server")


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU ticks so far, from Linux /proc: the whole machine and each process that matters here."""

    busy: int  # every CPU, user + nice + system + irq + softirq
    steal: int
    gunicorn: dict[int, int]  # pid -> ticks, the processes of one gunicorn's process group
    services: dict[int, int]  # pid -> ticks, every postgres and redis-server process
    children_s: float  # reaped children of this script (wrk), in seconds


def cpu_snapshot(pgid: int | None) -> CpuSnapshot | None:
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    gunicorn: dict[int, int] = {}
    services: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.find("(") + 1 : text.rfind(")")]
        fields = text[text.rfind(")") + 1 :].split()
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        if pgid is not None and int(fields[2]) == pgid:
            gunicorn[int(stat.parent.name)] = ticks
        elif comm in SERVICE_PROCESSES:
            services[int(stat.parent.name)] = ticks
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = values[0] + values[1] + values[2] + values[5] + values[6]
    return CpuSnapshot(busy, values[7], gunicorn, services, usage.ru_utime + usage.ru_stime)


def _spent(before: dict[int, int], after: dict[int, int]) -> int:
    """Ticks spent in between by the processes alive at the end (one that exited is not counted)."""
    return sum(ticks - before.get(pid, 0) for pid, ticks in after.items())


def cpu_figures(before: CpuSnapshot, after: CpuSnapshot, seconds: float, requests: int) -> dict[str, Any]:
    """CPU per request by who spent it, and how much of the machine other processes used meanwhile."""
    tick = os.sysconf("SC_CLK_TCK")
    gunicorn_s = _spent(before.gunicorn, after.gunicorn) / tick
    services_s = _spent(before.services, after.services) / tick
    wrk_s = after.children_s - before.children_s
    other_s = max(0.0, (after.busy - before.busy) / tick - gunicorn_s - services_s - wrk_s)
    capacity = seconds * (os.cpu_count() or 1)
    per_request = 1000 / max(1, requests)
    return {
        "gunicorn_ms_per_request": round(gunicorn_s * per_request, 3),
        # All PostgreSQL and Redis processes: on a shared server this includes other clients.
        "postgres_redis_ms_per_request": round(services_s * per_request, 3),
        "wrk_ms_per_request": round(wrk_s * per_request, 3),
        "other_processes_cpu_pct": round(100 * other_s / capacity, 1),
        "steal_pct": round(100 * (after.steal - before.steal) / tick / capacity, 1),
    }


def measure_reads(
    name: str, url: str, token: str, args: argparse.Namespace, server: Gunicorn | None
) -> dict[str, Any]:
    pgid = server.process.pid if server and server.process else None
    if args.warmup:
        run_wrk(url, token, args.warmup, args)
    before, started = cpu_snapshot(pgid), time.monotonic()
    result = run_wrk(url, token, args.duration, args)
    after, elapsed = cpu_snapshot(pgid), time.monotonic() - started
    if before and after and pgid is not None:
        result["cpu"] = cpu_figures(before, after, elapsed, result["requests"])
    cpu = result.get("cpu")
    log(
        f"{name}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms, errors {result['errors']}"
        + (
            f"; CPU ms/request: gunicorn {cpu['gunicorn_ms_per_request']}, "
            f"postgres+redis {cpu['postgres_redis_ms_per_request']}; "
            f"other processes {cpu['other_processes_cpu_pct']}% of the machine"
            if cpu
            else ""
        )
    )
    if cpu and cpu["other_processes_cpu_pct"] > NOISE_PCT:
        log(f"  other processes used {cpu['other_processes_cpu_pct']}% of the CPUs: this round is noisy")
    return result


def summarize_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median throughput, plus every round's requests/s."""
    ordered = sorted(rounds, key=lambda r: r["rps"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    summary = {key: chosen[key] for key in ("rps", "p50_ms", "p99_ms")}
    summary["errors"] = sum(r["errors"] for r in rounds)  # every round counts
    if "cpu" in chosen:
        summary["cpu"] = chosen["cpu"]
    summary["detail"] = {k: v for k, v in chosen.items() if k != "cpu"}
    if len(rounds) > 1:
        summary["rounds_rps"] = [r["rps"] for r in rounds]
        if "cpu" in chosen:
            summary["rounds_other_processes_cpu_pct"] = [r["cpu"]["other_processes_cpu_pct"] for r in rounds]
    return summary


def paired_ratio(me_rounds: list[dict[str, Any]], stock_rounds: list[dict[str, Any]]) -> float | None:
    ratios = [m["rps"] / s["rps"] for m, s in zip(me_rounds, stock_rounds, strict=False) if s["rps"]]
    return round(statistics.median(ratios), 2) if ratios else None


def cpu_ratio(me_rounds: list[dict[str, Any]], stock_rounds: list[dict[str, Any]]) -> float | None:
    """Median over rounds of stock/me CPU per request (gunicorn + PostgreSQL + Redis)."""

    def cost(result: dict[str, Any]) -> float:
        return float(
            result["cpu"]["gunicorn_ms_per_request"] + result["cpu"]["postgres_redis_ms_per_request"]
        )

    ratios = [
        cost(s) / cost(m)
        for m, s in zip(me_rounds, stock_rounds, strict=False)
        if "cpu" in m and "cpu" in s and cost(m) > 0
    ]
    return round(statistics.median(ratios), 2) if ratios else None


def interleaved_medians_ms(first: Any, second: Any, count: int) -> tuple[float, float]:
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(count):
        for func, times in zip((first, second), samples, strict=True):
            start = time.perf_counter()
            func()
            times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(samples[0]), 2), round(statistics.median(samples[1]), 2)


# --- Users -------------------------------------------------------------------


@dataclass
class BenchUser:
    username: str
    email: str
    password: str
    id: str | None = None


def new_user(role: str, run_id: str) -> BenchUser:
    name = f"bench-{run_id}-{role}"
    return BenchUser(name, f"{name}@bench.invalid", f"Bench-{secrets.token_urlsafe(18)}")


def create_users_orm(users: list[BenchUser]) -> None:
    from accounts.services import user_create

    for user in users:
        user.id = str(user_create(username=user.username, email=user.email, password=user.password).id)


def delete_users_orm(users: list[BenchUser]) -> None:
    from accounts.models import User

    ids = [u.id for u in users if u.id]
    if ids:
        User.objects.filter(id__in=ids).delete()
        log(f"deleted the benchmark users {', '.join(u.username for u in users)}")


def create_users_api(base: str, users: list[BenchUser]) -> None:
    for user in users:
        body = {"username": user.username, "email": user.email, "password": user.password}
        status, answer = http("POST", base + REGISTER_PATH, body)
        if status != 201:
            fail(f"register {user.username} at {base} failed: {status} {answer}")
        user.id = answer["id"]


def delete_users_api(base: str, users: list[BenchUser]) -> None:
    """Soft-delete each user as itself (the account purge removes it later)."""
    for user in users:
        with contextlib.suppress(Exception):
            token = login(base, user.username, user.password)["access"]
            http("DELETE", base + ME_PATH, {"password": user.password}, token=token)


# --- In-process profile --------------------------------------------------------


def profile_in_process(token: str, count: int) -> dict[str, Any]:
    """Wall time per request through Django's WSGI handler (no gunicorn, no socket), and cProfile."""
    import cProfile
    import pstats

    from django.core.handlers.wsgi import WSGIHandler

    # WhiteNoise warns that STATIC_ROOT does not exist (nothing is collected here): harmless.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    handler = WSGIHandler()

    def call(path: str) -> None:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        statuses: list[str] = []
        result = handler(environ, lambda status, headers, exc_info=None: statuses.append(status))
        try:
            b"".join(result)
        finally:
            result.close()  # request_finished: what gunicorn triggers too
        if not statuses[0].startswith("200"):
            raise RuntimeError(f"in-process GET {path}: {statuses[0]}")

    report: dict[str, Any] = {}
    for name, path in (("me", ME_PATH), ("stock_me", STOCK_PATH)):
        for _ in range(50):
            call(path)
        start = time.perf_counter()
        for _ in range(count):
            call(path)
        per_request_ms = (time.perf_counter() - start) * 1000 / count
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(count):
            call(path)
        profiler.disable()
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("cumulative").print_stats(35)
        print(f"\n===== in-process cProfile of GET {path} ({count} requests) =====", file=sys.stderr)
        print(text.getvalue(), file=sys.stderr)
        report[name] = {
            "ms_per_request": round(per_request_ms, 3),
            "rps_one_core": round(1000 / per_request_ms),
        }
    report["speedup"] = round(report["stock_me"]["ms_per_request"] / report["me"]["ms_per_request"], 2)
    return report


# --- Main --------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="measure a running service at this base URL instead of starting one")
    parser.add_argument("--stock-url", help="with --url: base URL that serves /bench/stock/me")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per endpoint (10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load first (2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2)")
    parser.add_argument(
        "--worker-class",
        choices=["sync", "gthread"],
        default="sync",
        help="gunicorn worker class: sync (the default, what `make serve` and the Dockerfile run) or gthread",
    )
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker (4)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate me/stock this many times (1)")
    parser.add_argument("--logins", type=int, default=20, help="timed sequential logins (20)")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="also profile N requests of each in-process"
    )
    args = parser.parse_args()
    if not 1 <= args.duration <= 600 or not 0 <= args.warmup <= 60:
        parser.error("--duration must be 1..600 and --warmup 0..60 seconds")
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds must be 1..10")
    if not 1 <= args.logins <= 80:
        parser.error("--logins must be 1..80 (the login throttle is 100/min per address)")
    if args.url and args.profile:
        parser.error("--profile runs the code in-process: not with --url")
    if args.connections < args.wrk_threads:
        parser.error("--connections must be at least --wrk-threads")
    return args


def main() -> None:
    args = parse_args()
    if shutil.which("wrk") is None:
        fail("wrk is not installed: `apt-get install -y wrk` (Debian package wrk)")
    local = not args.url
    if local:
        missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
        if missing:
            fail(
                f"{' and '.join(missing)} not set: the benchmark runs on PostgreSQL + Redis.\n"
                f"  Start throwaway ones with: {SERVICES_HINT}\n"
                "  or pass --url URL to measure a service that is already running."
            )
        if not os.environ["DATABASE_URL"].startswith(("postgres://", "postgresql://", "pgsql://")):
            fail("DATABASE_URL must be a PostgreSQL URL (postgres://...)")

    ensure_project_python()
    sys.path.insert(0, str(ROOT))
    work_dir = Path(tempfile.mkdtemp(prefix="hot_path-"))
    # The service logs into LOG_DIR: keep its files out of the repository.
    os.environ.setdefault("LOG_DIR", str(work_dir / "logs"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.stock_settings"

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.hashers import check_password, get_hasher, make_password

    busy_before = cpu_busy_percent()
    if busy_before is not None and busy_before > 20:
        log(f"the machine is {busy_before:.0f}% busy before the run: the figures will be noisy")
    run_id = f"{int(time.time())}-{secrets.token_hex(3)}"
    reader, logger_in = new_user("reader", run_id), new_user("login", run_id)
    users = [reader, logger_in]
    servers: list[Gunicorn] = []
    created = False
    result: dict[str, Any] = {}

    def on_sigterm(signum: int, frame: Any) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if local:
            log("manage.py migrate")
            migrate = subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
                env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
            )
            if migrate.returncode:
                fail(f"migrate failed:\n{migrate.stdout}\n{migrate.stderr}")
            create_users_orm(users)
            created = True
            server_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            service = Gunicorn("service", "config.settings", args, server_env, work_dir)
            stock = Gunicorn("stock", "benchmarks.stock_settings", args, server_env, work_dir)
            servers += [service, stock]
            for server in servers:
                server.start()
            base, stock_base = service.base, stock.base
        else:
            service = stock = None
            base = args.url.rstrip("/")
            stock_base = (args.stock_url or args.url).rstrip("/")
            create_users_api(base, users)
            created = True
        log(f"users {reader.username}, {logger_in.username}")

        # Login timing first, with its own user: its sessions must not evict the reader's.
        login(base, logger_in.username, logger_in.password)  # warm-up (connections, imports)
        login(base, logger_in.username, logger_in.password)
        encoded = make_password(logger_in.password)  # the first hasher: what a login verifies
        check_password(logger_in.password, encoded)
        # Interleaved, one of each in turn: both medians see the same machine.
        login_ms, bcrypt_ms = interleaved_medians_ms(
            lambda: login(base, logger_in.username, logger_in.password),
            lambda: check_password(logger_in.password, encoded),
            args.logins,
        )
        log(f"login median {login_ms} ms, {get_hasher().algorithm} verify median {bcrypt_ms} ms")

        token = login(base, reader.username, reader.password)["access"]
        status, me_body = http("GET", base + ME_PATH, token=token)
        if status != 200:
            fail(f"GET {ME_PATH}: {status} {me_body}")
        stock_status, stock_body = http("GET", stock_base + STOCK_PATH, token=token)
        has_stock = stock_status == 200
        if has_stock and stock_body != me_body:
            fail(f"the two endpoints disagree:\n  me:    {me_body}\n  stock: {stock_body}")
        if not has_stock:
            log(f"no stock baseline at {stock_base}{STOCK_PATH} ({stock_status}): measuring /users/me only")

        me_rounds: list[dict[str, Any]] = []
        stock_rounds: list[dict[str, Any]] = []
        for number in range(1, args.rounds + 1):
            log(f"round {number}/{args.rounds}: {args.duration} s each, {args.connections} connections")
            me_rounds.append(measure_reads("me", base + ME_PATH, token, args, service))
            if has_stock:
                stock_rounds.append(measure_reads("stock_me", stock_base + STOCK_PATH, token, args, stock))

        me = summarize_rounds(me_rounds)
        stock_me = summarize_rounds(stock_rounds) if stock_rounds else None
        hasher = get_hasher()
        result = {
            "me": me,
            "stock_me": stock_me,
            # Median of the per-round ratios: each round pairs two runs made close together.
            "speedup": paired_ratio(me_rounds, stock_rounds),
            # The same comparison in CPU per request (gunicorn + PostgreSQL + Redis): on two
            # cores throughput is CPU-bound, and this ratio moves less when other work runs.
            "cpu_speedup": cpu_ratio(me_rounds, stock_rounds),
            "login_median_ms": login_ms,
            "bcrypt_verify_median_ms": bcrypt_ms,
            "login_over_bcrypt": round(login_ms / bcrypt_ms, 2),
            "targets": {
                "speedup_at_least": SPEEDUP_TARGET,
                "speedup_met": (paired_ratio(me_rounds, stock_rounds) or 0) >= SPEEDUP_TARGET,
                "login_over_bcrypt_at_most": LOGIN_TARGET,
                "login_met": login_ms / bcrypt_ms <= LOGIN_TARGET,
            },
            "settings": {
                "mode": "local gunicorn" if local else "url",
                "url": base,
                "stock_url": stock_base if has_stock else None,
                "workers": args.workers if local else None,
                "worker_class": args.worker_class if local else None,
                "threads": args.threads if local and args.worker_class == "gthread" else None,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "rounds": args.rounds,
                "connections": args.connections,
                "wrk_threads": args.wrk_threads,
                "logins": args.logins,
                "hasher": hasher.algorithm,
                "bcrypt_rounds": getattr(hasher, "rounds", None),
                "database": redact(os.environ.get("DATABASE_URL", "")) if local else None,
                "cache": redact(os.environ.get("REDIS_URL", "")) if local else None,
                "conn_max_age": settings.DATABASES["default"].get("CONN_MAX_AGE"),
                "session_touch_seconds": settings.SESSION_TOUCH_SECONDS,
                "jwt_algorithm": settings.SIMPLE_JWT["ALGORITHM"],
                "cpus": os.cpu_count(),
                "cpu_busy_before_pct": busy_before,
                # Measured runs during which other processes used > NOISE_PCT % of the CPUs.
                "noisy_runs": sum(
                    1
                    for r in me_rounds + stock_rounds
                    if r.get("cpu", {}).get("other_processes_cpu_pct", 0) > NOISE_PCT
                ),
                "python": platform.python_version(),
                "django": django.get_version(),
                "wrk": wrk_version(),
                "git_commit": git_commit(),
            },
        }
        if args.profile:
            log(f"in-process profile: {args.profile} requests of each endpoint (cProfile on stderr)")
            result["in_process"] = profile_in_process(token, args.profile)
    finally:
        for server in servers:
            server.stop()
        if created:
            try:
                if local:
                    delete_users_orm(users)
                else:
                    delete_users_api(base, users)
            except Exception as exc:
                names = ", ".join(u.username for u in users)
                log(f"could not delete the benchmark users ({names}): {exc}")
        shutil.rmtree(work_dir, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
