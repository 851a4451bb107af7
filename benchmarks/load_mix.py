#!/usr/bin/env python3
"""Mixed load on the real stack with locust: requests/s, p50, p99 and errors per endpoint.

    .venv/bin/python benchmarks/load_mix.py                  # 60 s at 80 req/s, gunicorn as configured
    .venv/bin/python benchmarks/load_mix.py --threads 1      # the same with sync workers
    .venv/bin/python benchmarks/load_mix.py --scaling        # the same mix unpaced, 1 worker then 2
    .venv/bin/python benchmarks/load_mix.py --smoke          # a few seconds: keeps the script working (CI)

It starts PostgreSQL, Redis, a Celery worker and the service under gunicorn (`gunicorn.conf.py`:
2 workers x 8 threads; the production hasher) on loopback (testing/stack.py), creates the accounts,
logs each in, and runs `benchmarks/locustfile.py` headless. The clients join over RAMP_SECONDS; the
figures are the 60 s after. The mix: login 5 %, refresh 10 %, /users/me 40 %, LLM settings 20 %,
notifications 10 %, chat-session create 10 %, document upload 5 %.

The default rate is where login's bcrypt (≈ 240 ms a verify here) takes about one core: 5 % of 80
req/s is 4 logins/s. Goals: zero errors, p99 of the reads under 50 ms. Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testing.stack import PYTHON, Service, running_stack  # noqa: E402  (after the path is set)

READS = ("GET /users/me", "GET /profile/llm-settings", "GET /notifications")
PASSWORD = "a load-test pass phrase"  # noqa: S105  (throwaway accounts on a throwaway stack)
READ_P99_GOAL_MS = 50
RAMP_SECONDS = 10


def create_accounts(service: Service, count: int) -> list[str]:
    names = [f"load{i:03d}" for i in range(count)]

    def register(name: str) -> None:
        reply = service.request(
            "POST",
            "/api/v1/auth/register",
            {"username": name, "email": f"{name}@example.com", "password": PASSWORD},
        )
        if reply.status != 201:  # an account missing would show up later as a client's login 401s
            raise RuntimeError(f"registering {name}: {reply.status} {reply.body[:200]!r}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(register, names))
    return names


def open_sessions(service: Service, names: list[str], folder: Path) -> Path:
    """Log every account in before the clients start: the file of (username, access, refresh) they begin with.

    The clients start as logged-in users do, in the middle of their sessions.
    Logging twenty of them in at the first second instead (25 times the mix's
    login rate) would measure a login stampede, not the mix.
    """
    with ThreadPoolExecutor(2) as pool:
        pairs = list(pool.map(lambda name: service.login(name, PASSWORD), names))
    path = folder / "sessions.json"
    path.write_text(
        json.dumps([[name, pair["access"], pair["refresh"]] for name, pair in zip(names, pairs, strict=True)])
    )
    return path


def run_locust(
    base: str, sessions: Path, *, clients: int, rate: float, seconds: int, folder: Path
) -> list[dict]:
    prefix = folder / f"locust-{os.getpid()}-{clients}-{int(rate)}"
    env = {
        **os.environ,
        "LOAD_SESSIONS": str(sessions),
        "LOAD_PASSWORD": PASSWORD,
        "LOAD_RATE": str(rate),
        "LOAD_CLIENTS": str(clients),
    }
    subprocess.run(
        [
            str(Path(PYTHON).parent / "locust"),
            "-f",
            str(ROOT / "benchmarks" / "locustfile.py"),
            "--headless",
            "--users",
            str(clients),
            # Clients join over RAMP_SECONDS, and the figures start once all have joined: they
            # describe the steady mix, not each worker thread's first connection to PostgreSQL.
            "--spawn-rate",
            str(max(1.0, clients / RAMP_SECONDS)),
            "--reset-stats",
            "--run-time",
            f"{seconds + RAMP_SECONDS}s",
            "--host",
            base,
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    with open(f"{prefix}_stats.csv") as stats:
        return [row for row in csv.DictReader(stats) if row["Name"]]


def report(title: str, rows: list[dict]) -> tuple[int, float, float]:
    """Print the table; returns (errors, worst read p99 in ms, total req/s)."""
    print(f"\n{title}")
    print(f"{'endpoint':<28}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    errors, worst_read, total = 0, 0.0, 0.0
    for row in rows:
        if row["Name"] == "Aggregated":
            total = float(row["Requests/s"])
            continue
        failures = int(row["Failure Count"])
        p99 = float(row["99%"] or 0)
        errors += failures
        if row["Name"] in READS:
            worst_read = max(worst_read, p99)
        print(
            f"{row['Name']:<28}{float(row['Requests/s']):>9.1f}{float(row['50%'] or 0):>9.0f}{p99:>9.0f}{failures:>8}"
        )
    print(f"{'all':<28}{total:>9.1f}")
    return errors, worst_read, total


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=60, help="seconds of load per run")
    parser.add_argument(
        "--rate", type=float, default=80, help="requests/s of all clients together (0: unpaced)"
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per worker (default: gunicorn.conf.py's GUNICORN_THREADS, 8; 1: the sync worker)",
    )
    parser.add_argument(
        "--scaling", action="store_true", help="unpaced, with 1 worker then 2: the scaling factor"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a few seconds, few clients: the script still works"
    )
    options = parser.parse_args()
    if options.smoke:
        options.duration, options.clients, options.rate = 5, 4, 20

    folder = Path(tempfile.mkdtemp(prefix="load-"))
    folder.chmod(0o755)  # PostgreSQL's data folder inside must be reachable by the postgres user
    with running_stack(folder / "stack", extra_env={"DEBUG": "false"}) as stack:
        stack.celery_worker(name="load", concurrency=1)
        runs = [1, 2] if options.scaling else [options.workers]
        totals: dict[int, float] = {}
        failed = False
        names: list[str] = []
        for workers in runs:
            service = stack.gunicorn(workers=workers, threads=options.threads)
            names = names or create_accounts(service, options.clients)
            rate = 0 if options.scaling else options.rate
            rows = run_locust(
                service.base,
                open_sessions(service, names, folder),
                clients=options.clients,
                rate=rate,
                seconds=options.duration,
                folder=folder,
            )
            paced = f"{rate:g} req/s offered" if rate else "unpaced"
            errors, worst_read, totals[workers] = report(
                f"{workers} gunicorn worker(s) x {options.threads or 'GUNICORN_THREADS'} thread(s), {options.clients} clients, {paced}, {options.duration} s",
                rows,
            )
            service.stop()
            if errors:
                print(f"FAIL: {errors} error(s)")
                failed = True
            if not options.scaling and not options.smoke and worst_read >= READ_P99_GOAL_MS:
                print(f"FAIL: a read's p99 is {worst_read:.0f} ms (goal < {READ_P99_GOAL_MS} ms)")
                failed = True
        if options.scaling:
            print(
                f"\nscaling 1 -> 2 workers: {totals[2] / totals[1]:.2f}x ({totals[1]:.1f} -> {totals[2]:.1f} req/s)"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
