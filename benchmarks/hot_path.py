#!/usr/bin/env python3
"""Hot-path benchmark: the service's `GET /users/me` against a stock djoser project and a bare Django view.

    python benchmarks/hot_path.py [--rounds 3] [--duration 10] [--users 10] [--out result.json]

Needs DATABASE_URL (PostgreSQL) and REDIS_URL, `wrk`, and the stock project's two
packages (`pip install --no-deps -r benchmarks/stock/requirements.txt`). On free
loopback ports, with the same gunicorn settings (2 sync workers, CONN_MAX_AGE=60):

- **service**: this checkout, `config.wsgi`, `config.settings` untouched;
- **stock**: `benchmarks/stock/`, a `startproject` with DRF, SimpleJWT and djoser
  (`GET /auth/users/me/`: one user query per request, no session check), on its
  own database `<DATABASE_URL's name>_stock` of the same PostgreSQL server;
- **floor**: the stock project's bare Django JSON view `/floor/` (no auth, no database).

It creates `--users` users on each side, logs each in, checks every token once,
then per round loads service, stock and floor in turn with wrk (16 connections,
the Authorization header rotating over the tokens). After the rounds it prints
the ratio table (medians of the per-round ratios) on stdout, progress on stderr,
and stops what it started. Login is timed against one verify by the service's
first hasher (bcrypt_sha256), interleaved one by one.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.harness import (  # noqa: E402
    BenchError,
    Gunicorn,
    fail,
    http,
    interleaved_medians_ms,
    log,
    measure,
    median_ratio,
    redact,
    uptime,
    wrk_version,
)

STOCK_DIR = ROOT / "benchmarks" / "stock"
ME_PATH = "/api/v1/users/me"
LOGIN_PATH = "/api/v1/auth/login"
STOCK_ME_PATH = "/auth/users/me/"
STOCK_REGISTER_PATH = "/auth/users/"
STOCK_LOGIN_PATH = "/auth/jwt/create/"
FLOOR_PATH = "/floor/"
GOALS = {"stock": 2.0, "floor": 0.5, "login": 1.1}
NOISE_PCT = 10  # other processes' share of the CPUs above which a run is flagged
CONN_MAX_AGE = "60"


def ensure_project_python() -> None:
    """Re-run under the project's venv when this interpreter lacks Django."""
    try:
        import django  # noqa: F401
    except ImportError:
        venv_python = ROOT / ".venv" / "bin" / "python"
        if venv_python.exists() and Path(sys.executable) != venv_python:
            os.execv(venv_python, [str(venv_python), *sys.argv])  # noqa: S606
        fail("Django is not importable: run `make test` once (it creates .venv), then .venv/bin/python")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="service, stock, floor: this many times (3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of measured load per run (10)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of unmeasured load before each run (2)"
    )
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per server (2)")
    parser.add_argument("--users", type=int, default=10, help="users (tokens) per side, rotated by wrk (10)")
    parser.add_argument("--logins", type=int, default=20, help="timed logins (20)")
    parser.add_argument(
        "--skip", choices=["stock", "floor"], action="append", default=[], help="leave one out"
    )
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="DIR",
        help="also load GET /users/me of another checkout (e.g. a `git worktree` of an older commit), "
        "served the same way on the same database: the gain of a change, interleaved",
    )
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="then N in-process requests")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    args = parser.parse_args()
    if not 1 <= args.duration <= 600 or not 0 <= args.warmup <= 60 or not 1 <= args.rounds <= 10:
        parser.error("--duration must be 1..600, --warmup 0..60 seconds, --rounds 1..10")
    if not 1 <= args.logins <= 80 or not 1 <= args.users <= 40:
        parser.error("--logins must be 1..80 and --users 1..40 (the login limit is 100 a minute per address)")
    return args


def check_environment() -> None:
    if shutil.which("wrk") is None:
        fail("wrk is not installed: `apt-get install -y wrk` (Debian package wrk)")
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if missing:
        fail(
            f"{' and '.join(missing)} not set: the benchmark runs on PostgreSQL + Redis.\n"
            '  Start throwaway ones with: eval "$(scripts/services start)"'
        )
    if not os.environ["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
        fail("DATABASE_URL must be a PostgreSQL URL (postgres://...)")
    for module in ("djoser", "dj_database_url"):
        try:
            __import__(module)
        except ImportError:
            fail(f"{module} is missing: .venv/bin/pip install --no-deps -r benchmarks/stock/requirements.txt")


# --- The stock project's database ---------------------------------------------


def stock_database_url(service_url: str) -> str:
    parts = urllib.parse.urlsplit(service_url)
    return urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_stock"))


def create_stock_database(service_url: str) -> str:
    """A database of its own on the same server: the stock project's tables would clash with ours."""
    import psycopg
    from psycopg import sql

    url = stock_database_url(service_url)
    name = urllib.parse.urlsplit(url).path.lstrip("/")
    with psycopg.connect(service_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url


def drop_stock_database(service_url: str) -> None:
    import psycopg
    from psycopg import sql

    name = urllib.parse.urlsplit(stock_database_url(service_url)).path.lstrip("/")
    with psycopg.connect(service_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def migrate(cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    if result.returncode:
        fail(f"migrate in {cwd} failed:\n{result.stdout}\n{result.stderr}")


# --- Users -------------------------------------------------------------------


@dataclass
class BenchUser:
    username: str
    email: str
    password: str
    id: str | None = None


def new_users(prefix: str, count: int) -> list[BenchUser]:
    names = [f"{prefix}-{i:02d}" for i in range(count)]
    return [BenchUser(n, f"{n}@bench.example.com", f"Bench-{secrets.token_urlsafe(18)}") for n in names]


def create_service_users(users: list[BenchUser]) -> None:
    from accounts.services import user_create

    for user in users:
        user.id = str(user_create(username=user.username, email=user.email, password=user.password).id)


def delete_service_users(users: list[BenchUser]) -> None:
    from accounts.models import User

    ids = [u.id for u in users if u.id]
    if ids:
        User.objects.filter(id__in=ids).delete()


def service_login(base: str, user: BenchUser) -> str:
    status, body = http("POST", base + LOGIN_PATH, {"username": user.username, "password": user.password})
    if status != 200:
        fail(f"service login as {user.username}: {status} {body}")
    return str(body["access"])


def stock_token(base: str, user: BenchUser) -> str:
    body = {"username": user.username, "email": user.email, "password": user.password}
    status, answer = http("POST", base + STOCK_REGISTER_PATH, body)
    if status != 201:
        fail(f"stock register {user.username}: {status} {answer}")
    status, answer = http(
        "POST", base + STOCK_LOGIN_PATH, {"username": user.username, "password": user.password}
    )
    if status != 200:
        fail(f"stock login {user.username}: {status} {answer}")
    return str(answer["access"])


def write_tokens(path: Path, base: str, me_path: str, tokens: list[str]) -> Path:
    """The tokens, one a line, after checking each one once."""
    for token in tokens:
        status, body = http("GET", base + me_path, token=token)
        if status != 200:
            fail(f"GET {me_path} with a fresh token: {status} {body}")
    path.write_text("\n".join(tokens) + "\n")
    return path


# --- In-process profile --------------------------------------------------------


def profile_in_process(token: str, count: int) -> dict[str, Any]:
    """Wall time of GET /users/me through Django's WSGI handler (no gunicorn, no socket), and cProfile."""
    import cProfile
    import pstats
    import warnings

    from django.core.handlers.wsgi import WSGIHandler

    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    handler = WSGIHandler()
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": ME_PATH, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {token}", "REMOTE_ADDR": "127.0.0.1", "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": False,
        "wsgi.multiprocess": True, "wsgi.run_once": False,
    }  # fmt: skip

    def call() -> None:
        statuses: list[str] = []
        result = handler({**environ, "wsgi.input": io.BytesIO(b"")}, lambda s, h, e=None: statuses.append(s))
        try:
            b"".join(result)
        finally:
            result.close()  # request_finished: what gunicorn triggers too
        if not statuses[0].startswith("200"):
            raise BenchError(f"in-process GET {ME_PATH}: {statuses[0]}")

    for _ in range(100):
        call()
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(count):
            call()
        timings.append((time.perf_counter() - start) * 1e6 / count)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        call()
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
    print(f"\n===== in-process cProfile of GET {ME_PATH} ({count} requests) =====", file=sys.stderr)
    print(text.getvalue(), file=sys.stderr)
    return {"us_per_request_median_of_5": round(statistics.median(timings), 1)}


# --- Report ------------------------------------------------------------------


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rps_median": round(statistics.median(r["rps"] for r in runs), 1),
        "rps_rounds": [round(r["rps"]) for r in runs],
        "p99_ms_median": round(statistics.median(r["p99_ms"] for r in runs), 2),
        "gunicorn_cpu_ms_per_request_median": round(
            statistics.median(r.get("cpu", {}).get("gunicorn_ms_per_request", 0) for r in runs), 3
        ),
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "socket_errors": sum(r["errors"] - r["non_2xx"] for r in runs),
    }


def table(result: dict[str, Any]) -> str:
    def rps(side: str) -> str:
        summary = result["runs"].get(side)
        return (
            "-".join(f"{v:,}" for v in (min(summary["rps_rounds"]), max(summary["rps_rounds"])))
            if summary
            else ""
        )

    def mark(value: float | None, goal: float, at_most: bool = False) -> str:
        if value is None:
            return "not measured"
        ok = value <= goal if at_most else value >= goal
        return f"**{value:.2f}x**" + (" (met)" if ok else " (missed)")

    ratios = result["ratios"]
    non_2xx = {side: s["non_2xx"] + s["socket_errors"] for side, s in result["runs"].items()}
    lines = [
        "| | service | anchor | ratio | goal |",
        "|---|---|---|---|---|",
        f"| `GET /users/me` vs stock `GET /auth/users/me/` | {rps('service')} req/s | {rps('stock')} req/s "
        f"| {mark(ratios['stock'], GOALS['stock'])} | >= {GOALS['stock']}x |",
        f"| `GET /users/me` vs the bare view `/floor/` | | {rps('floor')} req/s "
        f"| {mark(ratios['floor'], GOALS['floor'])} | >= {GOALS['floor']}x |",
        f"| login median vs one bcrypt_sha256 verify | {result['login']['login_median_ms']} ms "
        f"| {result['login']['verify_median_ms']} ms | {mark(ratios['login'], GOALS['login'], at_most=True)} "
        f"| <= {GOALS['login']}x |",
        f"| non-2xx + socket errors | {non_2xx.get('service', 0)} "
        f"| {sum(v for k, v in non_2xx.items() if k != 'service')} | | 0 |",
    ]
    if ratios.get("compare"):
        lines.append(
            f"| `GET /users/me` vs the same of --compare | | {rps('compare')} req/s | **{ratios['compare']:.2f}x** | |"
        )
    # On a shared machine, CPU per request moves less than requests/s: the same comparison in CPU.
    cpu = {side: s["gunicorn_cpu_ms_per_request_median"] for side, s in result["runs"].items()}
    for side in ("stock", "floor", "compare"):
        if side in cpu and cpu.get("service"):
            lines.append(
                f"| gunicorn CPU per request, vs {side} | {cpu['service']} ms | {cpu[side]} ms "
                f"| {cpu[side] / cpu['service']:.2f}x by CPU | |"
            )
    return "\n".join(lines)


# --- Main --------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    check_environment()
    ensure_project_python()
    work_dir = Path(tempfile.mkdtemp(prefix="hot_path-"))
    os.environ.setdefault("LOG_DIR", str(work_dir / "logs"))  # keep the service's logs out of the tree
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["CONN_MAX_AGE"] = CONN_MAX_AGE
    database_url = os.environ["DATABASE_URL"]

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.hashers import check_password, get_hasher, make_password

    load_before = uptime()
    log(f"machine before the run: {load_before}")
    run_id = f"{int(time.time()) % 100000}{secrets.token_hex(2)}"
    service_users = new_users(f"bench{run_id}", args.users)
    login_user = new_users(f"bench{run_id}-login", 1)[0]
    stock_users = new_users(f"bench{run_id}", args.users)
    servers: list[Gunicorn] = []
    created_users: list[BenchUser] = []
    stock_db = False

    def on_sigterm(signum: int, frame: Any) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        # SECRET_KEY given explicitly: a --compare checkout must accept the same tokens.
        base_env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "CONN_MAX_AGE": CONN_MAX_AGE,
            "SECRET_KEY": settings.SECRET_KEY,
            # gunicorn.conf.py (read from the checkout) logs every request; the stock project logs none.
            "GUNICORN_ACCESS_LOG": "",
        }
        log("service: manage.py migrate")
        migrate(ROOT, base_env)
        wants_stock = not ({"stock", "floor"} <= set(args.skip))
        stock_env = {
            k: v
            for k, v in base_env.items()
            if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
        }
        if wants_stock:
            stock_env["STOCK_DATABASE_URL"] = create_stock_database(database_url)
            stock_db = True
            stock_env["DJANGO_SETTINGS_MODULE"] = "stockproject.settings"
            log("stock project: manage.py migrate")
            migrate(STOCK_DIR, stock_env)
        created_users = [*service_users, login_user]
        create_service_users(created_users)
        service = Gunicorn("service", "config.wsgi", ROOT, base_env, work_dir, "/health/live", args.workers)
        servers.append(service)
        stock = Gunicorn(
            "stock", "stockproject.wsgi", STOCK_DIR, stock_env, work_dir, FLOOR_PATH, args.workers
        )
        if wants_stock:
            servers.append(stock)
        if args.compare:
            other = Gunicorn(
                "compare",
                "config.wsgi",
                args.compare.resolve(),
                base_env,
                work_dir,
                "/health/live",
                args.workers,
            )
            servers.append(other)
        for server in servers:
            server.start()

        # Login first, with its own user: its sessions must not evict the readers'.
        for _ in range(2):
            service_login(service.base, login_user)  # warm-up (connections, imports)
        encoded = make_password(login_user.password)  # the first hasher: what a login verifies
        check_password(login_user.password, encoded)
        login_ms, verify_ms = interleaved_medians_ms(
            lambda: service_login(service.base, login_user),
            lambda: check_password(login_user.password, encoded),
            args.logins,
        )
        log(f"login median {login_ms} ms, {get_hasher().algorithm} verify median {verify_ms} ms")

        tokens = [service_login(service.base, user) for user in service_users]
        targets = [
            (
                "service",
                service,
                service.base + ME_PATH,
                write_tokens(work_dir / "service.tokens", service.base, ME_PATH, tokens),
            )
        ]
        if args.compare:  # the same users, sessions and tokens: one database, one key
            targets.append(("compare", other, other.base + ME_PATH, targets[0][3]))
        if wants_stock:
            log(f"stock project: registering and logging in {args.users} users (PBKDF2, slow on purpose)")
            stock_tokens = write_tokens(
                work_dir / "stock.tokens",
                stock.base,
                STOCK_ME_PATH,
                [stock_token(stock.base, u) for u in stock_users],
            )
            if "stock" not in args.skip:
                targets.append(("stock", stock, stock.base + STOCK_ME_PATH, stock_tokens))
            if "floor" not in args.skip:
                targets.append(("floor", stock, stock.base + FLOOR_PATH, stock_tokens))

        runs: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in targets}
        for number in range(1, args.rounds + 1):
            log(f"round {number}/{args.rounds}: {args.duration} s each, {args.connections} connections")
            for name, server, url, token_file in targets:
                runs[name].append(measure(name, url, token_file, server, args, NOISE_PCT))

        result: dict[str, Any] = {
            "runs": {name: summarize(side_runs) for name, side_runs in runs.items()},
            "ratios": {
                "stock": median_ratio(runs["service"], runs["stock"]) if "stock" in runs else None,
                "floor": median_ratio(runs["service"], runs["floor"]) if "floor" in runs else None,
                "compare": median_ratio(runs["service"], runs["compare"]) if "compare" in runs else None,
                "login": round(login_ms / verify_ms, 2),
            },
            "login": {
                "login_median_ms": login_ms,
                "verify_median_ms": verify_ms,
                "hasher": get_hasher().algorithm,
            },
            "machine": {
                "before": load_before,
                "after": uptime(),
                "cpus": os.cpu_count(),
                "noisy_runs": sum(
                    1
                    for side_runs in runs.values()
                    for r in side_runs
                    if r.get("cpu", {}).get("other_processes_cpu_pct", 0) > NOISE_PCT
                ),
                "other_processes_cpu_pct": [
                    r.get("cpu", {}).get("other_processes_cpu_pct")
                    for side_runs in runs.values()
                    for r in side_runs
                ],
            },
            "settings": {
                "rounds": args.rounds,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "connections": args.connections,
                "wrk_threads": args.wrk_threads,
                "workers": args.workers,
                "worker_class": "sync",
                "users_per_side": args.users,
                "conn_max_age": settings.DATABASES["default"].get("CONN_MAX_AGE"),
                "database": redact(database_url),
                "cache": redact(os.environ["REDIS_URL"]),
                "jwt_algorithm": settings.SIMPLE_JWT["ALGORITHM"],
                "python": platform.python_version(),
                "django": django.get_version(),
                "wrk": wrk_version(),
            },
        }
        if args.profile:
            log(f"in-process: {args.profile} requests of GET {ME_PATH} (cProfile on stderr)")
            result["in_process"] = profile_in_process(tokens[0], args.profile)
    except BenchError as exc:
        print(f"hot_path: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        for server in servers:
            server.stop()
        try:
            delete_service_users(created_users)
            if stock_db:
                drop_stock_database(database_url)
        except Exception as exc:
            log(f"could not clean up the benchmark's users or the stock database: {exc}")
        shutil.rmtree(work_dir, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(
        f"\nmachine: before {result['machine']['before']}; after {result['machine']['after']}; "
        f"{result['machine']['noisy_runs']} noisy runs"
    )
    print(json.dumps({k: result[k] for k in ("ratios", "runs")}, indent=1))


if __name__ == "__main__":
    main()
