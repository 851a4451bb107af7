#!/usr/bin/env python3
"""What each step of issue 14 saves on a warm `GET /api/v1/users/me`, in-process.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python benchmarks/hot_path_steps.py [--requests 2000]

Through Django's WSGI handler (the whole middleware stack, no gunicorn, no
socket), with one access token, each variant turning one step off:

- `before`: every step off (PyJWT on every request, django-redis `get_many`, DRF's dispatch);
- `+token map`, `+raw MGET`, `+lean dispatch`: one step on, from `before`;
- `all but near cache`: the three steps of issue 14, each warm read still one `MGET`;
- `all`: what the code does (issue 26's near cache too: no round trip on a warm read).

The variants run in turn, `--rounds` times, and the medians are printed (µs per
request): interleaving keeps a busy shared machine from favouring one of them.
The wrk figures of the whole server are `hot_path.py`'s.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per variant per round (2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds over all variants (5)")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        raise SystemExit('DATABASE_URL and REDIS_URL must be set: eval "$(scripts/services start)"')
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("LOG_DIR", tempfile.mkdtemp(prefix="hot_path_steps-"))
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import clear_url_caches, set_urlconf

    from accounts import hot_path_views, services
    from accounts import urls as account_urls
    from accounts.models import User
    from accounts.tokens import AccessClaims, SessionAccessToken
    from core import read_through

    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    username = f"steps-{os.getpid()}"
    user = services.user_create(
        username=username, email=f"{username}@bench.example.com", password=secrets.token_urlsafe(16)
    )
    try:
        pair = services.session_open(user=user, ip="127.0.0.1", user_agent="hot_path_steps")
        handler = WSGIHandler()
        environ = {
            "REQUEST_METHOD": "GET", "PATH_INFO": "/api/v1/users/me", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1", "HTTP_AUTHORIZATION": f"Bearer {pair.access}", "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
            "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
        }  # fmt: skip

        def call() -> None:
            statuses: list[str] = []
            result = handler({**environ, "wsgi.input": io.BytesIO()}, lambda s, h, e=None: statuses.append(s))
            try:
                b"".join(result)
            finally:
                result.close()
            if not statuses[0].startswith("200"):
                raise SystemExit(f"GET /users/me answered {statuses[0]}")

        def uncached_claims(raw: str) -> AccessClaims:
            """What every request did before the map: PyJWT through SimpleJWT."""
            token = SessionAccessToken(raw)  # type: ignore[arg-type]
            return AccessClaims(str(token["sub"]), str(token["sid"]), int(token["exp"]))

        drf_me = hot_path_views.MeViewSet.as_view(hot_path_views.ME_ACTIONS)

        @contextmanager
        def steps(token_map: bool, raw_mget: bool, lean_dispatch: bool, near: bool = False) -> Iterator[None]:
            with ExitStack() as stack:
                if not token_map:
                    stack.enter_context(mock.patch("accounts.authentication.access_claims", uncached_claims))
                if not raw_mget:
                    stack.enter_context(mock.patch.object(read_through, "_reader", return_value=None))
                elif not near:
                    reader = read_through._reader()
                    if reader is not None:
                        stack.enter_context(mock.patch.object(reader, "near", None))
                if not lean_dispatch:
                    pattern = next(p for p in account_urls.urlpatterns if getattr(p, "name", "") == "me")
                    stack.enter_context(mock.patch.object(pattern, "callback", drf_me))
                clear_url_caches()
                set_urlconf(None)
                yield
            clear_url_caches()

        variants: dict[str, tuple[bool, ...]] = {
            "before": (False, False, False),
            "+token map": (True, False, False),
            "+raw MGET": (False, True, False),
            "+lean dispatch": (False, False, True),
            "all but near cache": (True, True, True),
            "all": (True, True, True, True),
        }
        for flags in variants.values():  # warm every path, and check it is warm: 0 SQL
            with steps(*flags):
                for _ in range(200):
                    call()
                with CaptureQueriesContext(connection) as queries:
                    call()
                if len(queries):
                    raise SystemExit(
                        f"a warm request made {len(queries)} SQL queries: {queries.captured_queries}"
                    )
        timings: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, flags in variants.items():
                with steps(*flags):
                    start = time.perf_counter()
                    for _ in range(args.requests):
                        call()
                    timings[name].append((time.perf_counter() - start) * 1e6 / args.requests)
        before = statistics.median(timings["before"])
        print(f"{'variant':<20} {'µs/request':>11} {'saves':>8}   rounds")
        for name, values in timings.items():
            median = statistics.median(values)
            print(
                f"{name:<20} {median:>11.1f} {before - median:>8.1f}   {', '.join(f'{v:.0f}' for v in values)}"
            )
        # Issue 9's bound: a live session state expires every SESSION_STATE_TTL seconds, and the
        # next request refills it from the database. What one such request costs over a warm one:
        session_key = f"auth:s:{pair.session_id}"
        warm_us: list[float] = []
        refill_us: list[float] = []
        for _ in range(args.rounds * 40):
            for expired, samples in ((False, warm_us), (True, refill_us)):
                if expired:
                    cache.delete(session_key)  # the near cache drops it too (core/metrics_cache.py)
                start = time.perf_counter()
                call()
                samples.append((time.perf_counter() - start) * 1e6)
        extra = statistics.median(refill_us) - statistics.median(warm_us)
        print(
            f"\na request that refills an expired live session state: +{extra:.0f} µs over a warm one "
            f"(medians of {len(refill_us)}); once per live session every SESSION_STATE_TTL "
            f"({settings.SESSION_STATE_TTL} s): +{extra / settings.SESSION_STATE_TTL:.1f} µs per second of a session in use"
        )
        print(f"\nmachine: {Path('/proc/loadavg').read_text().split()[:3]} (load averages 1, 5, 15 min)")
    finally:
        User.objects.filter(id=user.id).delete()


if __name__ == "__main__":
    main()
