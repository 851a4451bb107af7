"""`core.middleware.CorsMiddleware` answers as django-cors-headers' own middleware does.

Each request is made twice, with the service's middleware and with the stock one in its place, and
every header of the two answers must match: with and without an `Origin`, an allowed one and not,
preflights with and without one, on the paths CORS covers and on those it leaves out.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from accounts.tests.support import bearer

ALLOWED = "https://app.example.com"
PER_REQUEST_HEADERS = {"X-Request-ID"}

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]

REQUESTS = {
    "no origin": ("get", "/api/v1/users/me", {}),
    "allowed origin": ("get", "/api/v1/users/me", {"HTTP_ORIGIN": ALLOWED}),
    "other origin": ("get", "/api/v1/users/me", {"HTTP_ORIGIN": "https://evil.example.net"}),
    "preflight": (
        "options",
        "/api/v1/users/me",
        {"HTTP_ORIGIN": ALLOWED, "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET"},
    ),
    "preflight without origin": (
        "options",
        "/api/v1/users/me",
        {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET"},
    ),
    "options without origin": ("options", "/api/v1/users/me", {}),
    "a 401 without origin": ("get", "/api/v1/notifications", {"HTTP_AUTHORIZATION": "Bearer nope"}),
    "a path CORS leaves out": ("get", "/.well-known/jwks.json", {}),
    "a path CORS leaves out, with origin": ("get", "/.well-known/jwks.json", {"HTTP_ORIGIN": ALLOWED}),
    "a browser page": ("get", "/health/live", {}),
}


def stock_middleware() -> list[str]:
    return [
        "corsheaders.middleware.CorsMiddleware" if name == "core.middleware.CorsMiddleware" else name
        for name in settings.MIDDLEWARE
    ]


def headers_of(response: Any) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name not in PER_REQUEST_HEADERS}


@pytest.mark.parametrize("case", REQUESTS)
def test_every_answer_is_the_stock_middlewares(auth_client, case):
    method, path, extra = REQUESTS[case]
    access = auth_client.tokens["access"]

    with override_settings(CORS_ALLOWED_ORIGINS=[ALLOWED]):
        ours = getattr(bearer(access), method)(path, **extra)
        with override_settings(MIDDLEWARE=stock_middleware()):
            # A new client: a client's handler builds its middleware chain once, on its first request.
            stock = getattr(bearer(access), method)(path, **extra)

    assert ours.status_code == stock.status_code
    assert headers_of(ours) == headers_of(stock)
    assert ours.content == stock.content


def test_an_api_answer_without_origin_still_varies_on_it(auth_client):
    response = bearer(auth_client.tokens["access"]).get("/api/v1/users/me")

    assert "origin" in response["Vary"].lower()
    assert "Access-Control-Allow-Origin" not in response


def test_an_allowed_origin_is_answered(auth_client):
    with override_settings(CORS_ALLOWED_ORIGINS=[ALLOWED]):
        response = bearer(auth_client.tokens["access"]).get("/api/v1/users/me", HTTP_ORIGIN=ALLOWED)

    assert response["Access-Control-Allow-Origin"] == ALLOWED
