"""One error shape for the whole API.

Non-field errors are `{"detail": "...", "code": "..."}`; validation errors keep
DRF's `{"field": ["message", ...]}` shape. Anything unexpected becomes a JSON
500 without a traceback (the traceback goes to the log).

Some failures are not the service's fault and are not a 500 either:
- the database unreachable, locked past its busy timeout, or restarting
  (`OperationalError`, `InterfaceError`): 503 with `Retry-After`, logged once
  with its cause. DRF views come here; plain Django views and the admin go
  through `DatabaseUnavailableMiddleware`, and failures in middleware itself
  through `server_error` (handler500);
- a body over `DATA_UPLOAD_MAX_MEMORY_SIZE`: 413; one nested past the
  recursion limit, or a value the database refuses (`DataError`): 400.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    MFARequired,
    NotFound,
    RateLimited,
    ServiceError,
    TooLarge,
    Unavailable,
    Unsupported,
    UpstreamFailed,
)

logger = logging.getLogger(__name__)

#: What the database driver raises when the server is gone, restarting or (SQLite) locked.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
TOO_LARGE = "The request body is too large."
NESTED_TOO_DEEPLY = "JSON parse error - nested too deeply."


def _database_unavailable(request: HttpRequest | None, exc: BaseException) -> dict[str, Any]:
    """Log the cause once; the 503 body."""
    where = f"{request.method} {request.path}" if request is not None else "a request"
    cause = exc.__cause__ or exc
    logger.error("Database unavailable, answered 503 to %s: %s: %s", where, type(cause).__name__, cause)
    return {
        "detail": "The service is temporarily unavailable. Try again shortly.",
        "code": "database_unavailable",
    }


def _mark_logged(response: HttpResponse) -> HttpResponse:
    # Django's request logger would log the 5xx again, without the cause.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


#: The one table from a domain error's kind to its HTTP status (the first match wins: subclasses
#: before `ServiceError`, the API's 400).
STATUS: tuple[tuple[type[ServiceError], int], ...] = (
    (NotFound, status.HTTP_404_NOT_FOUND),
    (MFARequired, status.HTTP_403_FORBIDDEN),
    (Forbidden, status.HTTP_403_FORBIDDEN),
    (AuthenticationFailed, status.HTTP_401_UNAUTHORIZED),
    (Conflict, status.HTTP_409_CONFLICT),
    (RateLimited, status.HTTP_429_TOO_MANY_REQUESTS),
    (Unavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
    (UpstreamFailed, status.HTTP_502_BAD_GATEWAY),
    (TooLarge, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE),
    (Unsupported, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE),
    (ServiceError, status.HTTP_400_BAD_REQUEST),
)


def service_error_status(exc: ServiceError) -> int:
    return next(code for kind, code in STATUS if isinstance(exc, kind))


def service_error_response(exc: ServiceError) -> Response:
    """`{detail, code}` (and the error's `extra` fields) with the kind's status; a "try later" says
    when (`Retry-After`), and a 401 carries its challenge (`core.middleware` adds
    `WWW-Authenticate` to every 401)."""
    body = {**exc.extra, "detail": exc.detail, "code": exc.code}
    response = Response(body, status=service_error_status(exc))
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    request = context.get("request")
    if isinstance(exc, DATABASE_UNAVAILABLE):
        body = _database_unavailable(getattr(request, "_request", request), exc)
        response = Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        response["Retry-After"] = str(settings.DATABASE_UNAVAILABLE_RETRY_AFTER)
        return _mark_logged(response)  # type: ignore[return-value]
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": TOO_LARGE, "code": "too_large"}, status=413)
    if isinstance(exc, RecursionError):
        return Response({"detail": NESTED_TOO_DEEPLY, "code": "parse_error"}, status=400)
    if isinstance(exc, SuspiciousOperation):  # too many fields or files, a malformed multipart body
        return Response({"detail": "Malformed request.", "code": "bad_request"}, status=400)
    if isinstance(exc, DataError):
        # A value the database refuses (out of range, a NUL character) got past validation.
        logger.warning("Input refused by the database: %s", exc)
        return Response({"detail": "Invalid input.", "code": "invalid"}, status=400)
    if isinstance(exc, ServiceError):
        return service_error_response(exc)
    if isinstance(exc, DjangoValidationError):
        # Services raise Django's ValidationError for field problems.
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(fields)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    drf_response = drf_exception_handler(exc, context)
    if drf_response is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        return Response(
            {"detail": "Internal server error.", "code": "server_error"},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    response = drf_response
    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        if isinstance(response.data, list):
            response.data = {"non_field_errors": response.data}
        return response
    detail: Any = exc.detail
    codes = exc.get_codes()
    if isinstance(exc, exceptions.UnsupportedMediaType):
        response.data = {"detail": _unreadable_body(request, exc), "code": exc.default_code}
    elif isinstance(detail, dict) and "detail" in detail:  # SimpleJWT's shape: {"detail", "code", ...}
        response.data = {"detail": str(detail["detail"]), "code": str(detail.get("code", exc.default_code))}
    elif isinstance(detail, dict | list):  # structure no client should see as text: the plain sentence
        response.data = {"detail": str(exc.default_detail), "code": exc.default_code}
    else:
        response.data = {"detail": str(detail), "code": codes if isinstance(codes, str) else exc.default_code}
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        response["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


#: How to send a body each parser reads, for a body that none of a view's parsers could.
_HOW_TO_SEND = {
    "application/json": "JSON with Content-Type: application/json",
    "application/x-www-form-urlencoded": "a form (Content-Type: application/x-www-form-urlencoded)",
    "multipart/form-data": "a multipart upload (Content-Type: multipart/form-data)",
}


def _unreadable_body(request: Any, exc: exceptions.UnsupportedMediaType) -> str:
    """DRF says 'Unsupported media type "" in request.'; say what is wrong and what to send instead."""
    content_type = (getattr(request, "content_type", "") or "").split(";", 1)[0].strip()
    problem = (
        f"Content-Type {content_type!r} is not accepted here" if content_type else "it has no Content-Type"
    )
    accepted = [getattr(parser, "media_type", "") for parser in getattr(request, "parsers", None) or ()]
    ways = [_HOW_TO_SEND.get(media_type, media_type) for media_type in accepted if media_type]
    return f"The body could not be read: {problem}. Send {', or '.join(ways) or 'no body'}."


def _json_error(status_code: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status_code)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 for paths no view matched: JSON, like the rest of the API.

    The Django admin keeps its HTML page: people read that one.
    """
    if request.path.startswith("/admin/"):
        return defaults.page_not_found(request, exception or Http404())
    return _json_error(404, "Not found.", "not_found")


def database_unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    response = JsonResponse(_database_unavailable(request, exc), status=503)
    response["Retry-After"] = str(settings.DATABASE_UNAVAILABLE_RETRY_AFTER)
    return _mark_logged(response)


class DatabaseUnavailableMiddleware:
    """Plain Django views and the admin: a database outage is a 503, like in the API."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_UNAVAILABLE):
            return database_unavailable_response(request, exception)
        return None


def server_error(request: HttpRequest) -> HttpResponse:
    # Called while Django handles the exception (sys.exc_info() is set): a
    # database outage met by a middleware (sessions, auth) is still a 503.
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return database_unavailable_response(request, exc)
    return _json_error(500, "Internal server error.", "server_error")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):
        return _json_error(413, TOO_LARGE, "too_large")
    return _json_error(400, "Bad request.", "bad_request")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(403, "You do not have permission to perform this action.", "permission_denied")
