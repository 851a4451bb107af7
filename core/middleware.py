"""Response headers every API answer needs; middleware only the browser pages need.

`ApiResponseHeadersMiddleware` is the one place for two rules of API.md, so
that an endpoint added later is covered without remembering them:
- every `/api/` answer is `Cache-Control: no-store` unless its view chose a
  policy: they carry tokens (login, refresh, social login) or personal data
  (`/users/me`, export, the user's own records), which no shared or browser
  cache may keep;
- every 401, wherever it comes from (DRF leaves `WWW-Authenticate` out when
  the view has no authenticator, and services raise their own 401s), says
  `WWW-Authenticate: Bearer`.

The browser-only middleware below:

Sessions, the auth user and messages serve the Django admin;
the API authenticates every request with its bearer token and renders JSON.
The benchmark (benchmarks/hot_path.py) measured this stack at ~0.3 ms of a
~1.5 ms authenticated read, so `/api/` requests go around it. CSRF and frame
options stay on for everything (cheap, and `check --deploy` looks for them).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from corsheaders.middleware import CorsMiddleware as StockCorsMiddleware
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_vary_headers
from django_prometheus import middleware as prometheus
from django_prometheus.utils import Time, TimeSince
from whitenoise.middleware import WhiteNoiseMiddleware

API_PREFIX = "/api/"
WWW_AUTHENTICATE = 'Bearer realm="api"'


class ApiResponseHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 401 and not response.has_header("WWW-Authenticate"):
            response["WWW-Authenticate"] = WWW_AUTHENTICATE
        if request.path_info.startswith(API_PREFIX) and not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
        return response


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


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, quiet about a `STATIC_ROOT` that `collectstatic` never filled.

    The static files are served from the apps' folders (`WHITENOISE_USE_FINDERS`),
    so a missing `STATIC_ROOT` is the normal state of `make run`, not a fault:
    WhiteNoise's "No directory at" warning read as an error to newcomers.
    """

    def add_files(self, root: str, prefix: str | None = None) -> None:
        if root == self.static_root and not os.path.isdir(root):
            return
        super().add_files(root, prefix)


class CorsMiddleware(StockCorsMiddleware):
    """django-cors-headers, with its answer to a request without `Origin` reached without its machinery.

    Calls between services and from tools send no `Origin`; for them the stock middleware does one
    thing, `Vary: Origin` on the paths it covers, but first builds `request.headers` (a dict of every
    header) to look for the `Origin` that is not there: ~15 µs of a ~180 µs warm read (issue 26).
    A request with an `Origin`, and every `OPTIONS` (a preflight), goes through the stock code.
    """

    def __call__(self, request: HttpRequest) -> Any:
        if "HTTP_ORIGIN" in request.META or request.method == "OPTIONS" or self.async_mode:
            return super().__call__(request)
        enabled = request._cors_enabled = self.is_enabled(request)  # type: ignore[attr-defined]
        response = self.get_response(request)
        assert isinstance(response, HttpResponseBase)  # not async_mode: the stock code's own assertion
        if enabled:
            patch_vary_headers(response, ("origin",))
        return response


BrowserSessionMiddleware = _browser_only(SessionMiddleware)
BrowserAuthenticationMiddleware = _browser_only(AuthenticationMiddleware)
BrowserMessageMiddleware = _browser_only(MessageMiddleware)


# --- Request metrics ----------------------------------------------------------------------------


class _BoundChildren:
    """django-prometheus' `label_metric`, with each label set's child looked up once per process.

    prometheus_client's `labels()` checks the names, turns every value into a string and takes the
    metric's lock on every call: seven times a request here (issue 26). The child for a label set
    never changes, so it is kept in a dict; its size is the number of series, which prometheus_client
    keeps anyway. Threads that race on a first lookup both get the same child from `labels()`.
    """

    _children: dict[tuple[Any, ...], Any]

    def label_metric(self, metric: Any, request: Any, response: Any = None, **labels: Any) -> Any:
        if not labels:
            return metric
        key = (metric, *labels.items())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(**labels)
        return child


_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"})
_UNNAMED_VIEW = "<unnamed view>"


class PrometheusAfterMiddleware(_BoundChildren, prometheus.PrometheusAfterMiddleware):
    """django-prometheus' inner middleware: the same series and values, without its per-request waste.

    - label children bound once (`_BoundChildren`), and a response's four looked up together;
    - `process_request` reads the two headers it needs from `META` instead of `request.headers`,
      which builds a dict of every header on first use (nothing else on the API's path uses it);
    - a response's charset is read once per `Content-Type`, not parsed on every answer;
    - one fix: django-prometheus labels the latency with the request's method as sent, so every
      new token a client sends as a method (`FOO1`, `FOO2`...) became a series of its own, kept
      for the life of the process. The method is `<invalid method>` there too, as it already is
      in django-prometheus' other series. `core/tests/test_request_metrics.py` compares the rest
      with django-prometheus' own middleware, series by series.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._children = {}
        self._response_children: dict[tuple[Any, ...], tuple[Any, Any, Any, Any]] = {}
        self._charsets: dict[tuple[str | None, str], str] = {}

    def _method(self, request: HttpRequest) -> str:
        return request.method if request.method in _KNOWN_METHODS else "<invalid method>"  # type: ignore[return-value]

    def process_request(self, request: HttpRequest) -> None:
        transport = self._transport(request)
        method = self._method(request)
        self.label_metric(self.metrics.requests_by_method, request, method=method).inc()
        self.label_metric(self.metrics.requests_by_transport, request, transport=transport).inc()
        # django-prometheus' own test of the deprecated `request.is_ajax()`.
        if request.META.get("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest":
            self.label_metric(self.metrics.requests_ajax, request).inc()
        content_length = int(request.META.get("CONTENT_LENGTH") or 0)
        self.label_metric(self.metrics.requests_body_bytes, request).observe(content_length)
        request.prometheus_after_middleware_event = Time()  # type: ignore[attr-defined]

    def _charset(self, response: HttpResponse) -> str:
        key = (getattr(response, "_charset", None), response.get("Content-Type", ""))
        charset = self._charsets.get(key)
        if charset is None:
            charset = self._charsets[key] = str(response.charset)
        return charset

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        method = self._method(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match is not None and match.view_name is not None else _UNNAMED_VIEW
        has_charset = hasattr(response, "charset")
        charset = self._charset(response) if has_charset else ""
        key = (response.status_code, view, method, charset)
        children = self._response_children.get(key)
        if children is None:
            metrics, status = self.metrics, str(response.status_code)
            children = self._response_children[key] = (
                metrics.responses_by_status.labels(status=status),
                metrics.responses_by_status_view_method.labels(status=status, view=view, method=method),
                metrics.responses_by_charset.labels(charset=charset) if has_charset else None,
                metrics.requests_latency_by_view_method.labels(view=view, method=method),
            )
        by_status, by_status_view_method, by_charset, latency = children
        by_status.inc()
        by_status_view_method.inc()
        if by_charset is not None:
            by_charset.inc()
        if getattr(response, "streaming", False):
            self.metrics.responses_streaming.inc()
        if hasattr(response, "content"):
            self.metrics.responses_body_bytes.observe(len(response.content))
        started = getattr(request, "prometheus_after_middleware_event", None)
        if started is not None:
            latency.observe(TimeSince(started))
        else:
            self.metrics.requests_unknown_latency.inc()
        return response
