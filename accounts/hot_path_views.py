"""Lean dispatch: the hottest reads answered without DRF's request cycle, with DRF's exact answer.

A warm `GET /users/me` spent more in DRF's dispatch (the Request wrapper,
content negotiation, the authentication and permission loops, finalizing the
Response) than in the view itself (issue 14; the gain is in benchmarks/README.md).
`lean_view(SomeAPIView, get=handler)` answers the plain case directly:

- the handler gets the Django request and returns the body's data, or None
  to let the DRF view answer;
- every case the lean path does not take on goes to the unchanged DRF view:
  a missing or refused token (so each 401 is DRF's own, `WWW-Authenticate`
  included), another method, an `Accept` or `?format=` that DRF's content
  negotiation would weigh, a handler that returns None or raises;
- the body is rendered by DRF's `JSONRenderer` and the response carries the
  headers DRF's view would add (`Allow`, `Vary`); middleware (`Cache-Control`
  and the rest) sees it like any other response;
- the returned function carries the DRF view's attributes (`cls`,
  `initkwargs`, `csrf_exempt`), so drf-spectacular documents the view as before
  and Django's CSRF check treats it the same.

`accounts/tests/test_hot_path_views.py` pins each lean endpoint's response (status,
headers, bytes) against the DRF view's and the serializer's.

Another read joins by writing its handler and routing through `lean_view`, as
`profiles/views/llm_settings.py` does for `GET /profile/llm-settings`:

    def _effective_for_bearer(request: HttpRequest) -> dict[str, Any] | None:
        caller = bearer_caller(request)
        return None if caller is None else llm_settings_effective(user_id=caller.id)

    llm_settings_view = lean_view(LLMSettingsView, get=_effective_for_bearer)

A handler must answer exactly what the DRF view answers (the endpoint's test
compares the two, as `test_hot_path_views.py` does), and it reads: the only write on
the way is the authentication's own `last_used_at` touch.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from core.errors import ServiceError

from . import services
from .authentication import bearer_principal
from .cache import Principal
from .views import MeViewSet, VerifyView

logger = logging.getLogger(__name__)

Handler = Callable[[HttpRequest], Any]

#: `Accept` values that DRF's negotiation answers with `application/json` and nothing else to weigh.
_PLAIN_ACCEPT = frozenset({"", "*/*", "application/json", "application/*"})


def _plain_negotiation(request: HttpRequest) -> bool:
    accept = request.META.get("HTTP_ACCEPT", "")
    if "format" in request.META.get("QUERY_STRING", ""):
        return False  # DRF's `?format=` override
    return all(part.strip() in _PLAIN_ACCEPT for part in accept.split(","))


def bearer_caller(request: HttpRequest) -> Principal | None:
    """The caller of a plain `Authorization: Bearer <token>` request that passes every check, else None.

    The checks are `SessionJWTAuthentication`'s own (`bearer_principal`); None
    sends the request to the DRF view, which answers the 401.
    """
    parts = request.META.get("HTTP_AUTHORIZATION", "").split()
    if len(parts) != 2 or parts[0] != "Bearer":
        return None
    try:
        caller = bearer_principal(parts[1])
    except exceptions.AuthenticationFailed:
        return None
    request.user = caller  # type: ignore[assignment]  # what DRF's Request sets on the Django request
    return caller


def json_object(request: HttpRequest) -> dict[str, Any] | None:
    """The JSON object body as DRF's JSONParser reads it, or None when DRF must judge it."""
    if request.content_type != "application/json":
        return None
    if (request.content_params or {}).get("charset", "utf-8").lower() not in {"utf-8", "utf8"}:
        return None

    def refuse(constant: str) -> None:
        raise ValueError(constant)  # NaN / Infinity: DRF's parser refuses them too

    try:
        data = json.loads(request.body.decode("utf-8"), parse_constant=refuse)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def lean_view(
    view_class: type[APIView], *, actions: dict[str, str] | None = None, **handlers: Handler
) -> Callable[..., HttpResponse]:
    """`view_class.as_view()` (a viewset's `as_view(actions)`), with the given methods (`get=`,
    `post=`) answered by their handlers."""
    drf_view = view_class.as_view(actions) if actions else view_class.as_view()  # type: ignore[call-arg]
    methods = {name.upper(): handler for name, handler in handlers.items()}
    renderer = JSONRenderer()
    headers: dict[str, str] = {}

    def view_headers(request: HttpRequest) -> dict[str, str]:
        if not headers:  # what `APIView.finalize_response` adds, once per process
            instance = view_class()
            for method, action in (actions or {}).items():  # what a viewset's view binds
                setattr(instance, method, getattr(instance, action))
            instance.setup(request)
            headers.update(instance.default_response_headers)
        return headers

    @functools.wraps(drf_view)
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        handler = methods.get(request.method or "")
        if handler is not None and _plain_negotiation(request):
            try:
                data = handler(request)
            except Exception:
                # The DRF view answers again, with its own error handling.
                logger.debug("lean %s %s: left to DRF", request.method, request.path, exc_info=True)
                data = None
            if data is not None:
                response = HttpResponse(renderer.render(data), content_type=renderer.media_type)
                for name, value in view_headers(request).items():
                    response[name] = value
                return response
        return drf_view(request, *args, **kwargs)

    return csrf_exempt(view)


# --- The lean endpoints -----------------------------------------------------------


def _me(request: HttpRequest) -> dict[str, Any] | None:
    caller = bearer_caller(request)
    return None if caller is None else caller.as_api_user()


def _verify(request: HttpRequest) -> dict[str, Any] | None:
    body = json_object(request)
    token = body.get("token") if body else None
    # VerifySerializer's CharField: a string, trimmed, at most 4096 characters; anything else is DRF's.
    if not isinstance(token, str) or not token or token != token.strip() or len(token) > 4096:
        return None
    try:
        return services.access_token_verify(token=token)
    except ServiceError:
        return None


ME_ACTIONS = {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
me_view = lean_view(MeViewSet, actions=ME_ACTIONS, get=_me)
verify_view = lean_view(VerifyView, post=_verify)
