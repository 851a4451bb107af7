#!/usr/bin/env python3
"""What the operations layer costs per request: django-prometheus' two middlewares, the request id,
and the timed cache backend (issue 15).

    python benchmarks/metrics_overhead.py [--requests 3000] [--rounds 5]

In-process (Django's test client, the embedded default, no server): `GET /health/live` through
the full middleware stack with and without the two Prometheus middlewares, and `cache.get_many`
on the timed in-process backend against Django's plain one. Interleaved rounds; prints one JSON
document with the medians in microseconds. Set PROMETHEUS_MULTIPROC_DIR to measure the
multiprocess (mmap) counters that gunicorn uses.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache.backends.locmem import LocMemCache  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from core.metrics_cache import LocMemCache as TimedLocMemCache  # noqa: E402

PROMETHEUS = {
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    "core.middleware.PrometheusAfterMiddleware",  # django-prometheus' with its label children bound once
}


def per_request_us(client: Client, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        client.get("/health/live", HTTP_HOST="localhost")
    return (time.perf_counter() - start) / count * 1e6


def per_call_us(cache: LocMemCache, count: int) -> float:
    cache.set("a", 1)
    start = time.perf_counter()
    for _ in range(count):
        cache.get("a")
    return (time.perf_counter() - start) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with_metrics = Client()
    with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m not in PROMETHEUS]):
        without_metrics = Client()
        without_metrics.get(
            "/health/live", HTTP_HOST="localhost"
        )  # the handler (and its middleware list) is built now
    with_metrics.get("/health/live", HTTP_HOST="localhost")
    plain = LocMemCache("bench-plain", {})
    timed = TimedLocMemCache("bench-timed", {})

    rows: dict[str, list[float]] = {"with": [], "without": [], "plain": [], "timed": []}
    for _ in range(args.rounds):
        rows["without"].append(per_request_us(without_metrics, args.requests))
        rows["with"].append(per_request_us(with_metrics, args.requests))
        rows["plain"].append(per_call_us(plain, args.requests * 5))
        rows["timed"].append(per_call_us(timed, args.requests * 5))
    median = {name: round(statistics.median(values), 1) for name, values in rows.items()}
    print(
        json.dumps(
            {
                "multiprocess": bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")),
                "request_us": {"with_prometheus": median["with"], "without": median["without"]},
                "request_overhead_us": round(median["with"] - median["without"], 1),
                "cache_get_us": {"timed": median["timed"], "plain": median["plain"]},
                "cache_get_overhead_us": round(median["timed"] - median["plain"], 1),
                "rounds": args.rounds,
                "requests_per_round": args.requests,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
