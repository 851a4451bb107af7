"""The service's request metrics middleware (`core.middleware.PrometheusAfterMiddleware`) writes the
series django-prometheus' own writes, with the same values, and bounds what a client can add.

The same requests are made under each middleware in turn, and what each run added to every
`django_http_*` sample is compared; latencies are compared by their counts (their sums and buckets
are timings). The one difference on purpose: a method no HTTP standard names is `<invalid method>`
in the latency's labels too, so a client cannot add series at will.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess

from accounts.tests.support import bearer
from core.metrics_process import multiprocess_dir
from testing.metrics import Scrape

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]

OURS = "core.middleware.PrometheusAfterMiddleware"
STOCK = "django_prometheus.middleware.PrometheusAfterMiddleware"


def _timing(name: str) -> bool:
    return name.endswith("_created") or ("latency" in name and not name.endswith("_count"))


def scrape() -> Scrape:
    """The series, read in-process as `/metrics` reads them: a scrape over HTTP would count itself."""
    registry = REGISTRY
    if multiprocess_dir() is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Scrape(generate_latest(registry).decode())


def added(before: Scrape, after: Scrape) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        key: value - before.samples.get(key, 0.0)
        for key, value in after.samples.items()
        if key[0].startswith("django_http_") and not _timing(key[0]) and value != before.samples.get(key, 0.0)
    }


def requests_of_every_kind(access: str) -> list[Callable[[], Any]]:
    reader, anonymous = bearer(access), Client()
    return [
        lambda: reader.get("/api/v1/users/me"),
        lambda: reader.head("/api/v1/users/me"),
        lambda: reader.options("/api/v1/users/me"),
        lambda: reader.get("/api/v1/profile/llm-settings"),
        lambda: anonymous.get("/api/v1/users/me"),  # 401
        lambda: anonymous.get("/api/v1/no-such-thing"),  # 404, no view
        lambda: anonymous.post(
            "/api/v1/auth/login", {"username": "nobody", "password": "x" * 20}, "application/json"
        ),
        lambda: anonymous.get("/admin/login/"),  # a page, text/html
        lambda: anonymous.get("/health/live"),
        lambda: anonymous.get("/api/v1/users/me", HTTP_X_REQUESTED_WITH="XMLHttpRequest"),
    ]


def run(middleware: str, access: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    chain = [OURS if name == OURS else name for name in settings.MIDDLEWARE]
    chain[chain.index(OURS)] = middleware
    with override_settings(MIDDLEWARE=chain):
        before = scrape()
        for make_request in requests_of_every_kind(access):  # new clients: a handler builds its
            make_request()  # middleware chain on its first request
        after = scrape()
    return added(before, after)


def test_every_series_and_value_is_django_prometheus_own(auth_client):
    access = auth_client.tokens["access"]

    ours, stock = run(OURS, access), run(STOCK, access)

    assert ours == stock
    assert {name for name, _ in ours} >= {
        "django_http_requests_total_by_method_total",
        "django_http_responses_total_by_status_view_method_total",
        "django_http_responses_total_by_charset_total",
        "django_http_requests_latency_seconds_by_view_method_count",
        "django_http_requests_body_total_bytes_count",
        "django_http_ajax_requests_total",
    }


def test_methods_no_standard_names_add_no_series(auth_client):
    client = bearer(auth_client.tokens["access"])
    before = scrape()

    for n in range(30):
        client.generic(f"FOO{n}", "/api/v1/users/me")

    latency = {
        dict(labels)["method"]
        for (name, labels), _ in added(before, scrape()).items()
        if name == "django_http_requests_latency_seconds_by_view_method_count"
    }
    assert latency == {"<invalid method>"}
