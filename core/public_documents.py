"""Machine-read documents anyone may fetch: the JWKS, the OIDC discovery document, AsyncAPI.

They carry no personal data and change only with a restart (keys, issuer, topics), so unlike the
rest of the API they are cacheable by anyone (`Cache-Control: public, max-age=...`) and readable
from any origin (`Access-Control-Allow-Origin: *`, no credentials): a browser-based tool or
another service's front end reads them as the back ends do. django-cors-headers is kept off
these paths (`CORS_URLS_REGEX` in settings): it answers preflights for the configured origins
only, and these are for every origin.

The header is written with Django's `patch_cache_control`, so it is the directive list and nothing
else: django-oauth-toolkit's JWKS view sends `Cache-Control: Cache-Control: public, max-age=...`,
which a cache reads as no directive at all.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_cache_control

#: Five minutes: PyJWKClient keeps a fetched key set for `lifespan=300` seconds by default, so a
#: verifier that keeps its defaults holds the keys no longer than this header allows. A rotation
#: publishes the next key beside the current one first (JWT_PREVIOUS_PUBLIC_KEY_FILE), and
#: PyJWKClient refetches at once when a token names a `kid` it does not hold.
MAX_AGE_SECONDS = 300

ALLOWED_METHODS = "GET, HEAD, OPTIONS"


def _open_to_every_origin(response: HttpResponse) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = "*"
    return response


def public_document(request: HttpRequest, body: dict[str, Any]) -> HttpResponse:
    """`body` as JSON for GET and HEAD, a CORS preflight's answer for OPTIONS, else a JSON 405."""
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        response["Allow"] = ALLOWED_METHODS
        response["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        # What a fetch may ask in its preflight; nothing sent here is a credential.
        response["Access-Control-Allow-Headers"] = request.headers.get("Access-Control-Request-Headers", "*")[
            :1000
        ]
        response["Access-Control-Max-Age"] = "86400"
        return _open_to_every_origin(response)
    if request.method not in {"GET", "HEAD"}:
        response = JsonResponse(
            {"detail": f'Method "{(request.method or "")[:20]}" not allowed.', "code": "method_not_allowed"},
            status=405,
        )
        response["Allow"] = ALLOWED_METHODS
        return response
    response = JsonResponse(body)
    patch_cache_control(response, public=True, max_age=MAX_AGE_SECONDS)
    return _open_to_every_origin(response)
