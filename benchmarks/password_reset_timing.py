#!/usr/bin/env python3
"""Password reset: does a known address take longer to answer than an unknown one?

    python benchmarks/password_reset_timing.py [--requests 200] [--url URL]

Without --url it starts the embedded default as `make run` does (migrate, then
runserver, on a throwaway SQLite file, tasks in-process, email to the console)
on a free loopback port, registers one account, and posts
`/api/v1/auth/password/reset` alternately for that account's address and for
an unknown one. Prints one JSON document: the median and p90 latency of each,
and their difference. Issue 10 measured 9.6 ms (known) against 4.9 ms
(unknown) before the reset moved its lookup, audit and mail into one task
queued the same way for both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testing.stack import free_port  # noqa: E402  (after the path is set)

RESET = "/api/v1/auth/password/reset"
STRONG = "correct horse battery staple"


def post(base: str, path: str, body: dict[str, str]) -> tuple[int, float]:
    request = urllib.request.Request(  # noqa: S310  (a loopback URL this script started or was given)
        base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status, (time.perf_counter() - started) * 1000


def start_service(
    tmp: Path,
    extra_env: dict[str, str] | None = None,
    users_jsonl: str = "",
    setup: Callable[[str, dict[str, str]], None] | None = None,
) -> tuple[str, subprocess.Popen[bytes]]:
    """The embedded default on a free port; `users_jsonl` is imported with `bulk_create_users` first,
    and `setup(python, env)` runs after the migrations, before the server starts."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    unlimited = "100000/min"
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        LOG_DIR=str(tmp),
        ADMIN_PASSWORD=STRONG,
        THROTTLE_PASSWORD_RESET_IP=unlimited,
        THROTTLE_REGISTER_IP=unlimited,
        **(extra_env or {}),
    )
    python = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    if users_jsonl:
        subprocess.run(
            [python, "manage.py", "bulk_create_users", "-"],
            cwd=ROOT,
            env=env,
            input=users_jsonl.encode(),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    if setup is not None:
        setup(python, env)
    port = free_port()
    process = subprocess.Popen(
        [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/health/live", timeout=1).read()  # noqa: S310
            return base, process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the service did not start")


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[int(len(ordered) * 0.9)], 2),
        "n": len(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per kind (alternated)")
    parser.add_argument("--url", help="a running service (its reset limit must allow the requests)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="reset-bench-"))
    process = None
    try:
        if args.url:
            base = args.url.rstrip("/")
        else:
            base, process = start_service(tmp)
        known = f"bench-{os.getpid()}@example.com"
        status, _ = post(
            base,
            "/api/v1/auth/register",
            {"username": f"bench{os.getpid()}", "email": known, "password": STRONG},
        )
        if status not in (201, 400):
            raise SystemExit(f"registration answered {status}")
        for _ in range(20):  # warm up both paths
            post(base, RESET, {"email": known})
            post(base, RESET, {"email": "nobody-here@example.com"})
        times: dict[str, list[float]] = {"known": [], "unknown": []}
        for index in range(args.requests):
            for kind in ("known", "unknown") if index % 2 else ("unknown", "known"):
                email = known if kind == "known" else f"nobody-{index}@example.com"
                status, elapsed = post(base, RESET, {"email": email})
                if status != 202:
                    raise SystemExit(f"reset answered {status}")
                times[kind].append(elapsed)
        result = {kind: summary(samples) for kind, samples in times.items()}
        result["median_difference_ms"] = round(
            result["known"]["median_ms"] - result["unknown"]["median_ms"], 2
        )
        result["service"] = base if args.url else "embedded default (runserver, SQLite, eager tasks)"
        print(json.dumps(result, indent=2))
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
