"""Middleware that only the browser-facing pages need, skipped for the JSON API.

Sessions, the auth user and messages serve the Django admin;
the API authenticates every request with its bearer token and renders JSON.
The benchmark (benchmarks/hot_path.py) measured this stack at ~0.3 ms of a
~1.5 ms authenticated read, so `/api/` requests go around it. CSRF and frame
options stay on for everything (cheap, and `check --deploy` looks for them).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse

API_PREFIX = "/api/"


def _browser_only(middleware: type[Any]) -> type[Any]:
    """`middleware` for every path but the API's; it must act through `__call__` alone."""
    for hook in ("process_view", "process_exception", "process_template_response"):
        if hasattr(middleware, hook):
            raise TypeError(f"{middleware.__name__} uses {hook}: it cannot be skipped this way")

    # A subclass, so Django's checks still see the middleware the admin requires.
    class BrowserOnly(middleware):  # type: ignore[valid-type,misc]
        def __call__(self, request: HttpRequest) -> HttpResponse:
            if request.path_info.startswith(API_PREFIX):
                return self.get_response(request)  # type: ignore[no-any-return]
            return super().__call__(request)  # type: ignore[no-any-return]

    BrowserOnly.__name__ = BrowserOnly.__qualname__ = f"BrowserOnly{middleware.__name__}"
    return BrowserOnly


BrowserSessionMiddleware = _browser_only(SessionMiddleware)
BrowserAuthenticationMiddleware = _browser_only(AuthenticationMiddleware)
BrowserMessageMiddleware = _browser_only(MessageMiddleware)
