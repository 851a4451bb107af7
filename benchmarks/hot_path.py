#!/usr/bin/env python3
"""Hot-path benchmark: the service's `GET /users/me`, as it ships, against a stock djoser project and a bare Django view.

    python benchmarks/hot_path.py [--rounds 3] [--duration 10] [--out result.json]

Needs `wrk`, the stock project's two packages (`pip install --no-deps -r
benchmarks/stock/requirements.txt`), and PostgreSQL + Redis: DATABASE_URL and REDIS_URL, or
`--own-servers` (a throwaway PostgreSQL and Redis of its own, which other work on the machine
cannot flush or load). On free loopback ports, `CONN_MAX_AGE=60` everywhere:

- **shipped (production)**: this checkout as `make serve` and the image start it, `gunicorn -c
  gunicorn.conf.py config.wsgi` (2 workers x 8 threads, the access log to stdout, metrics on,
  its own metrics folder), with docker-compose.yml's production environment (`DJANGO_ENV=production`,
  a Celery broker set, plain HTTP: `SECURE_SSL_REDIRECT=false`);
- **shipped (development)**: the same command with the development settings (`make serve`: no
  `DJANGO_ENV`, no broker);
- **gthread** (a second row, *not* what ships): the production row with gunicorn's own gthread
  worker (`GUNICORN_WORKER_CLASS=gthread`), the default before `core/gunicorn_worker.py`;
- **old tuned variant** (a second row, *not* what ships): what this benchmark measured before
  issue 26, `gunicorn.conf.py` overridden to 2 sync workers and no access log;
- **stock**: `benchmarks/stock/`, a `startproject` with DRF, SimpleJWT and djoser (`GET
  /auth/users/me/`: one user query per request, no session check), 2 sync workers, on its own
  database `<DATABASE_URL's name>_stock` of the same PostgreSQL server;
- **floor**: the stock project's bare Django JSON view `/floor/` (no auth, no database);
- `--variant NAME:VAR=VALUE,...`: the shipped production service with some variables changed
  (`--variant sync:GUNICORN_THREADS=1`), for measuring one layer at a time.

Every service target reads the same users' tokens. Per round, each target is loaded in turn with
wrk (16 connections, the Authorization header rotating over the tokens), the order rotating from
round to round. Each run records requests/s, p99, and from /proc the server's CPU and context
switches per request. The ratios are per round (each round's runs are made close together), given
as the median and every round's value; the same comparison by CPU per request follows, since CPU
moves less than requests/s when other work shares the machine. Login is timed against one verify
by the service's first hasher (bcrypt_sha256), interleaved one by one, on the shipped production
service. The table goes to stdout, progress to stderr; what was started is stopped.
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
from dataclasses import dataclass, field
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
GOALS = {"stock": 3.0, "floor": 0.7, "login": 1.1}
NOISE_PCT = 10  # other processes' share of the CPUs above which a run is flagged
CONN_MAX_AGE = "60"
ISSUER = "http://127.0.0.1"  # the tokens' `iss`: the same for every service target, so one token fits all
SHIPPED = "shipped"
SHIPPED_DEV = "shipped-dev"
TUNED = "tuned"
GTHREAD = "gthread"
LABELS = {
    SHIPPED: "shipped, production settings",
    SHIPPED_DEV: "shipped, development settings",
    GTHREAD: "shipped, production settings, gunicorn's gthread worker (the earlier default)",
    TUNED: "old tuned variant (2 sync workers, no access log: not what ships)",
    "stock": "stock djoser `GET /auth/users/me/` (2 sync workers)",
    "floor": "bare Django view `/floor/` (2 sync workers)",
    "compare": "--compare checkout, shipped, production settings",
}


def ensure_project_python() -> None:
    """Re-run under the project's venv when this interpreter lacks Django."""
    try:
        import django  # noqa: F401
    except ImportError:
        venv_python = ROOT / ".venv" / "bin" / "python"
        if venv_python.exists() and Path(sys.executable) != venv_python:
            os.execv(venv_python, [str(venv_python), *sys.argv])  # noqa: S606
        fail("Django is not importable: run `make test` once (it creates .venv), then .venv/bin/python")


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, assignments = text.partition(":")
    overrides = {}
    for item in filter(None, assignments.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"--variant {text!r}: expected NAME:VAR=VALUE,...")
        overrides[key] = value
    if not name or name in LABELS:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: give it a name of its own")
    return name, overrides


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="every target, in turn, this many times (3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of measured load per run (10)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of unmeasured load before each run (2)"
    )
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--users", type=int, default=10, help="users (tokens) per side, rotated by wrk (10)")
    parser.add_argument("--logins", type=int, default=20, help="timed logins (20)")
    parser.add_argument(
        "--skip",
        choices=[SHIPPED_DEV, GTHREAD, TUNED, "stock", "floor", "login"],
        action="append",
        default=[],
        help="leave one out (repeatable)",
    )
    parser.add_argument(
        "--variant",
        type=parse_variant,
        action="append",
        default=[],
        metavar="NAME:VAR=VALUE,...",
        help="also the shipped production service with these variables changed",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="DIR",
        help="also load GET /users/me of another checkout (e.g. a `git worktree` of an older commit), "
        "shipped the same way on the same database: the gain of a change, interleaved",
    )
    parser.add_argument(
        "--own-servers",
        action="store_true",
        help="start a throwaway PostgreSQL and Redis (testing/stack.py) instead of DATABASE_URL/REDIS_URL",
    )
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="then N in-process requests")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    args = parser.parse_args()
    if not 1 <= args.duration <= 600 or not 0 <= args.warmup <= 60 or not 1 <= args.rounds <= 10:
        parser.error("--duration must be 1..600, --warmup 0..60 seconds, --rounds 1..10")
    if not 1 <= args.logins <= 80 or not 1 <= args.users <= 40:
        parser.error("--logins must be 1..80 and --users 1..40 (the login limit is 100 a minute per address)")
    return args


def check_environment(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        fail("wrk is not installed: `apt-get install -y wrk` (Debian package wrk)")
    if not args.own_servers:
        missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
        if missing:
            fail(
                f"{' and '.join(missing)} not set: the benchmark runs on PostgreSQL + Redis.\n"
                '  Start throwaway ones with: eval "$(scripts/services start)", or pass --own-servers'
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
            fail(f"GET {me_path} with a fresh token on {base}: {status} {body}")
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


def _cpu(run: dict[str, Any], key: str = "gunicorn_ms_per_request") -> float:
    return float(run.get("cpu", {}).get(key, 0.0))


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rps_median": round(statistics.median(r["rps"] for r in runs), 1),
        "rps_rounds": [round(r["rps"]) for r in runs],
        "p99_ms_median": round(statistics.median(r["p99_ms"] for r in runs), 2),
        "p99_ms_rounds": [round(r["p99_ms"], 1) for r in runs],
        "cpu_ms_per_request_median": round(statistics.median(_cpu(r) for r in runs), 3),
        "cpu_ms_per_request_rounds": [_cpu(r) for r in runs],
        "voluntary_switches_per_request_median": round(
            statistics.median(_cpu(r, "voluntary_switches_per_request") for r in runs), 2
        ),
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "socket_errors": sum(r["errors"] - r["non_2xx"] for r in runs),
    }


def round_ratios(tops: list[dict[str, Any]], bottoms: list[dict[str, Any]]) -> dict[str, Any]:
    """Per round, top/bottom by requests/s and bottom/top by CPU per request; medians and rounds."""
    by_rps = [t["rps"] / b["rps"] for t, b in zip(tops, bottoms, strict=True) if b["rps"]]
    by_cpu = [_cpu(b) / _cpu(t) for t, b in zip(tops, bottoms, strict=True) if _cpu(t) and _cpu(b)]
    return {
        "rps": round(statistics.median(by_rps), 2) if by_rps else None,
        "rps_rounds": [round(r, 2) for r in by_rps],
        "cpu": round(statistics.median(by_cpu), 2) if by_cpu else None,
        "cpu_rounds": [round(r, 2) for r in by_cpu],
    }


def table(result: dict[str, Any]) -> str:
    def mark(value: float | None, goal: float, at_most: bool = False) -> str:
        if value is None:
            return "not measured"
        ok = value <= goal if at_most else value >= goal
        return f"**{value:.2f}x**" + (" (met)" if ok else " (missed)")

    def rounds(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    runs, ratios = result["runs"], result["ratios"]
    lines = [
        "| target | req/s (rounds) | p99 ms | CPU ms/request | voluntary switches/request | non-2xx + errors |",
        "|---|---|---|---|---|---|",
    ]
    for name, summary in runs.items():
        lines.append(
            f"| {LABELS.get(name, f'variant `{name}`')} | {' / '.join(f'{v:,}' for v in summary['rps_rounds'])} "
            f"| {summary['p99_ms_median']} | {summary['cpu_ms_per_request_median']} "
            f"| {summary['voluntary_switches_per_request_median']} "
            f"| {summary['non_2xx'] + summary['socket_errors']} |"
        )
    lines += [
        "",
        "| ratio | by req/s: median (rounds) | by CPU/request: median (rounds) | goal |",
        "|---|---|---|---|",
    ]
    for name, against in ratios.get("reads", {}).items():
        for anchor, ratio in against.items():
            goal = GOALS.get(anchor)
            lines.append(
                f"| {name} vs {anchor} | {mark(ratio['rps'], goal) if goal else ratio['rps']} "
                f"({rounds(ratio['rps_rounds'])}) | {ratio['cpu']} ({rounds(ratio['cpu_rounds'])}) "
                f"| {f'>= {goal}x' if goal else ''} |"
            )
    login = result.get("login")
    if login:
        lines.append(
            f"| login median {login['login_median_ms']} ms vs one {login['hasher']} verify "
            f"{login['verify_median_ms']} ms | {mark(ratios['login'], GOALS['login'], at_most=True)} | "
            f"| <= {GOALS['login']}x |"
        )
    return "\n".join(lines)


# --- Servers and main --------------------------------------------------------


@dataclass
class Target:
    name: str
    server: Gunicorn
    url: str
    tokens: Path
    runs: list[dict[str, Any]] = field(default_factory=list)


def own_servers(work_dir: Path) -> tuple[Any, Any]:
    """A throwaway PostgreSQL and Redis (testing/stack.py), so other work cannot flush or load ours."""
    from testing.stack import Postgres, Redis

    folder = work_dir / "servers"
    folder.mkdir()
    folder.chmod(0o755)  # the postgres user must reach its data folder
    (folder / "pg").mkdir()
    postgres = Postgres(folder / "pg").start()
    redis = Redis(folder).start()
    return postgres, redis


def service_env(base: dict[str, str], production: bool, keys: dict[str, str]) -> dict[str, str]:
    """The service's environment as docker-compose.yml (production) or `make serve` (development) give it."""
    drop = {
        "DJANGO_ENV",
        "GUNICORN_THREADS",
        "GUNICORN_WORKER_CLASS",
        "GUNICORN_ACCESS_LOG",
        "WEB_CONCURRENCY",
        "PROMETHEUS_MULTIPROC_DIR",
    }
    env = {k: v for k, v in base.items() if k not in drop and not k.startswith("KAFKA_")}
    env.update(keys)
    env.pop("CELERY_BROKER_URL", None)
    if production:
        env["DJANGO_ENV"] = "production"
        env["SECURE_SSL_REDIRECT"] = "false"  # docker-compose.yml's default: plain HTTP on the port
        # As the compose set: a broker for the tasks (nothing consumes them here; they wait in Redis).
        env["CELERY_BROKER_URL"] = env["REDIS_URL"].rsplit("/", 1)[0] + "/1"
    return env


def main() -> None:
    args = parse_args()
    check_environment(args)
    ensure_project_python()
    work_dir = Path(tempfile.mkdtemp(prefix="hot_path-"))
    work_dir.chmod(0o755)
    servers: list[Gunicorn] = []
    created_users: list[BenchUser] = []
    stock_db = False
    backing: tuple[Any, Any] | None = None

    def on_sigterm(signum: int, frame: Any) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, on_sigterm)
    result: dict[str, Any] = {}
    try:
        if args.own_servers:
            log("starting a PostgreSQL and a Redis of our own")
            backing = own_servers(work_dir)
            os.environ["DATABASE_URL"] = backing[0].url
            os.environ["REDIS_URL"] = backing[1].url(0)
        database_url = os.environ["DATABASE_URL"]
        from cryptography.fernet import Fernet

        keys = {
            "SECRET_KEY": f"hot-path-{secrets.token_urlsafe(40)}",
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "JWT_ISSUER": ISSUER,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CONN_MAX_AGE": CONN_MAX_AGE,
            "LOG_DIR": str(work_dir / "logs"),  # the service's log file, out of the tree
            "PYTHONUNBUFFERED": "1",
        }
        os.environ.update(keys)
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
        os.environ.pop("DJANGO_ENV", None)
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

        prod_env = service_env(dict(os.environ), True, keys)
        dev_env = service_env(dict(os.environ), False, keys)
        log("service: manage.py migrate")
        migrate(ROOT, dev_env)
        wants_stock = not ({"stock", "floor"} <= set(args.skip))
        stock_env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PROMETHEUS_MULTIPROC_DIR"}
        }
        stock_env["CONN_MAX_AGE"] = CONN_MAX_AGE
        if wants_stock:
            stock_env["STOCK_DATABASE_URL"] = create_stock_database(database_url)
            stock_db = True
            stock_env["DJANGO_SETTINGS_MODULE"] = "stockproject.settings"
            log("stock project: manage.py migrate")
            migrate(STOCK_DIR, stock_env)
        created_users = [*service_users, login_user]
        create_service_users(created_users)

        def shipped(
            name: str, env: dict[str, str], chdir: Path = ROOT, flags: tuple[str, ...] = ()
        ) -> Gunicorn:
            return Gunicorn(name, "config.wsgi", chdir, env, work_dir, "/health/live", conf=True, flags=flags)

        service = shipped(SHIPPED, prod_env)
        services_ = [service]
        if SHIPPED_DEV not in args.skip:
            services_.append(shipped(SHIPPED_DEV, dev_env))
        if GTHREAD not in args.skip:
            services_.append(shipped(GTHREAD, {**prod_env, "GUNICORN_WORKER_CLASS": "gthread"}))
        if TUNED not in args.skip:
            tuned_env = {**dev_env, "GUNICORN_ACCESS_LOG": ""}
            services_.append(shipped(TUNED, tuned_env, flags=("--worker-class", "sync", "--threads", "1")))
        for name, overrides in args.variant:
            services_.append(shipped(name, {**prod_env, **overrides}))
        if args.compare:
            services_.append(shipped("compare", prod_env, chdir=args.compare.resolve()))
        stock = Gunicorn(
            "stock", "stockproject.wsgi", STOCK_DIR, stock_env, work_dir, FLOOR_PATH, flags=("--workers", "2")
        )
        servers.extend(services_)
        if wants_stock:
            servers.append(stock)
        for server in servers:
            server.start()

        login: dict[str, Any] | None = None
        if "login" not in args.skip:
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
            login = {
                "login_median_ms": login_ms,
                "verify_median_ms": verify_ms,
                "hasher": get_hasher().algorithm,
            }

        tokens = [service_login(service.base, user) for user in service_users]
        token_file = work_dir / "service.tokens"
        targets: list[Target] = []
        for server in services_:  # the same users, sessions and tokens: one database, one key
            write_tokens(token_file, server.base, ME_PATH, tokens)
            targets.append(Target(server.name, server, server.base + ME_PATH, token_file))
        if wants_stock:
            log(f"stock project: registering and logging in {args.users} users (PBKDF2, slow on purpose)")
            stock_tokens = write_tokens(
                work_dir / "stock.tokens",
                stock.base,
                STOCK_ME_PATH,
                [stock_token(stock.base, u) for u in stock_users],
            )
            if "stock" not in args.skip:
                targets.append(Target("stock", stock, stock.base + STOCK_ME_PATH, stock_tokens))
            if "floor" not in args.skip:
                targets.append(Target("floor", stock, stock.base + FLOOR_PATH, stock_tokens))

        for number in range(args.rounds):
            log(f"round {number + 1}/{args.rounds}: {args.duration} s each, {args.connections} connections")
            # The order rotates: no target always runs first, or always after the same neighbour.
            shift = number % len(targets)
            for target in targets[shift:] + targets[:shift]:
                target.runs.append(
                    measure(target.name, target.url, target.tokens, target.server, args, NOISE_PCT)
                )

        by_name = {t.name: t.runs for t in targets}
        anchors = [a for a in ("stock", "floor") if a in by_name]
        result = {
            "runs": {t.name: summarize(t.runs) for t in targets},
            "ratios": {
                "reads": {
                    t.name: {
                        **{a: round_ratios(t.runs, by_name[a]) for a in anchors},
                        **(
                            {SHIPPED: round_ratios(t.runs, by_name[SHIPPED])}
                            if t.name not in {SHIPPED, "stock", "floor"}
                            else {}
                        ),
                    }
                    for t in targets
                    if t.name not in {"stock", "floor"}
                },
                "login": round(login["login_median_ms"] / login["verify_median_ms"], 2) if login else None,
            },
            "login": login,
            "machine": {
                "before": load_before,
                "after": uptime(),
                "cpus": os.cpu_count(),
                "noisy_runs": sum(
                    1
                    for t in targets
                    for r in t.runs
                    if r.get("cpu", {}).get("other_processes_cpu_pct", 0) > NOISE_PCT
                ),
                "other_processes_cpu_pct": {
                    t.name: [r.get("cpu", {}).get("other_processes_cpu_pct") for r in t.runs] for t in targets
                },
            },
            "settings": {
                "rounds": args.rounds,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "connections": args.connections,
                "wrk_threads": args.wrk_threads,
                "users_per_side": args.users,
                "variants": dict(args.variant),
                "conn_max_age": CONN_MAX_AGE,
                "database": redact(database_url),
                "cache": redact(os.environ["REDIS_URL"]),
                "own_servers": bool(args.own_servers),
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
                drop_stock_database(os.environ["DATABASE_URL"])
        except Exception as exc:
            log(f"could not clean up the benchmark's users or the stock database: {exc}")
        if backing is not None:
            backing[1].stop()
            backing[0].stop("immediate")
        shutil.rmtree(work_dir, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(
        f"\nmachine: before {result['machine']['before']}; after {result['machine']['after']}; "
        f"{result['machine']['noisy_runs']} noisy runs"
    )


if __name__ == "__main__":
    main()
