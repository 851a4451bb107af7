#!/usr/bin/env python3
"""Benchmark: a warm `GET /api/v1/profile/llm-settings` against the same read served from the database.

    python benchmarks/llm_settings.py [--requests 2000] [--rounds 7]

Other services read a user's LLM settings on every agent call, so the warm read
is answered from the cache with no SQL query. This measures what that buys: the
same request through Django's WSGI handler in this process (no network, no
server: only the service's own cost), in two ways, alternated round by round:

- `cache`: the service as it is (auth and settings from the cache: 0 queries);
- `database`: the same view, with the settings read from the database on every
  request (1 query; the auth still from the cache, so only the settings read differs).

It runs on whatever DATABASE_URL and REDIS_URL name (the embedded default when
unset; the figures that matter are on PostgreSQL + Redis: `eval "$(scripts/services start)"`),
migrates, creates a throwaway user with saved settings, prints one JSON document
on stdout (progress on stderr) with the median cost per request of each way and
their ratio, and deletes the user.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PATH = "/api/v1/profile/llm-settings"


def log(message: str) -> None:
    print(f"[llm_settings] {message}", file=sys.stderr, flush=True)


def setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per way and round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    setup()

    from django.conf import settings
    from django.core.cache import cache
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from accounts.services import session_login, user_create
    from profiles.llm_catalog import catalog
    from profiles.selectors import llm_settings as selector
    from profiles.services.llm_settings import llm_settings_update
    from profiles.views import llm_settings as view

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # setup only
    password = secrets.token_urlsafe(16)
    user = user_create(
        username=f"bench-{secrets.token_hex(4)}",
        email=f"{secrets.token_hex(6)}@bench.invalid",
        password=password,
    )
    try:
        llm_settings_update(
            user_id=user.id,
            changes={
                "agent": {
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "temperature": 0.3,
                    "max_tokens": 8000,
                },
                "rag": {
                    "provider": "openai",
                    "model": "gpt-4.1-mini",
                    "temperature": 0.0,
                    "max_tokens": 1024,
                },
                "test_generator": {
                    "provider": "gigachat",
                    "model": "GigaChat-2-Max",
                    "temperature": 0.8,
                    "max_tokens": 4000,
                },
            },
            replace=True,
        )
        selector._write(str(user.id))  # what the change's after-commit write does
        token = session_login(
            identifier=user.username, password=password, ip="127.0.0.1", user_agent="bench"
        ).access
        handler = WSGIHandler()
        environ_template = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": PATH,
            "QUERY_STRING": "",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "HTTP_HOST": "localhost",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        statuses: list[str] = []

        def start_response(status: str, headers: list[Any]) -> None:
            statuses.append(status)

        def request() -> bytes:
            environ = dict(environ_template, **{"wsgi.input": io.BytesIO(b"")})
            response = handler(environ, start_response)
            body = b"".join(response)
            response.close()  # type: ignore[attr-defined]
            return body

        cached_read = view.llm_settings_effective

        def database_read(*, user_id: Any) -> dict[str, Any]:
            saved = selector.llm_settings_saved_from_db(user_id=user_id)
            return selector.llm_settings_effective_from(saved, catalog())

        ways = {"cache": cached_read, "database": database_read}

        def use(way: str) -> None:
            view.llm_settings_effective = ways[way]  # type: ignore[assignment]

        # Warm up both ways, check they answer the same body, and count their queries.
        bodies, queries = {}, {}
        for way in ways:
            use(way)
            for _ in range(50):
                request()
            with CaptureQueriesContext(connection) as ctx:
                bodies[way] = json.loads(request())
            queries[way] = len(ctx.captured_queries)
        assert bodies["cache"] == bodies["database"], bodies
        assert set(statuses) == {"200 OK"}, set(statuses)

        per_request: dict[str, list[float]] = {way: [] for way in ways}
        for round_ in range(args.rounds):
            for way in ways if round_ % 2 == 0 else reversed(list(ways)):
                use(way)
                started = time.perf_counter()
                for _ in range(args.requests):
                    request()
                per_request[way].append((time.perf_counter() - started) / args.requests * 1e6)
            log(
                f"round {round_ + 1}/{args.rounds}: "
                + ", ".join(f"{w} {v[-1]:.0f} µs" for w, v in per_request.items())
            )
        use("cache")
        assert set(statuses) == {"200 OK"}, set(statuses)

        medians = {way: statistics.median(values) for way, values in per_request.items()}
        result = {
            "path": PATH,
            "database": connection.vendor,
            "cache": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
            "requests_per_round": args.requests,
            "rounds": args.rounds,
            "queries_per_request": queries,
            "us_per_request_median": {way: round(value, 1) for way, value in medians.items()},
            "us_per_request_rounds": {
                way: [round(v, 1) for v in values] for way, values in per_request.items()
            },
            "requests_per_second": {way: round(1e6 / value) for way, value in medians.items()},
            "ratio_database_over_cache": round(medians["database"] / medians["cache"], 2),
            # The machine is shared: a load above its CPU count inflates both ways alike.
            "load_average_1min": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(),
        }
        print(json.dumps(result, indent=2))
        log(
            f"warm cached read {medians['cache']:.0f} µs/request ({queries['cache']} queries), "
            f"database read {medians['database']:.0f} µs/request ({queries['database']} query): "
            f"the cached read is {result['ratio_database_over_cache']}x faster"
        )
    finally:
        User.objects.filter(id=user.id).delete()
        cache.delete(selector._key(user.id))


if __name__ == "__main__":
    main()
