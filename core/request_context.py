"""Who is asking, from where, under which request id: set once per request.

The audit log reads who and where; every log line reads the request id
(`core.logging_context`), which is also echoed in `X-Request-ID` and carried
into the Celery tasks the request queues. Context variables rather than
arguments threaded through every service: audit rows and log lines are side
records, and services called from commands and tasks simply have no request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse

from .http import client_ip, user_agent
from .logging_context import new_request_id, reset_request_id, sane_request_id, set_request_id

REQUEST_ID_HEADER = "X-Request-ID"


@dataclass(frozen=True)
class RequestMeta:
    ip: str | None
    user_agent: str


_current: ContextVar[RequestMeta | None] = ContextVar("request_meta", default=None)


def current_request_meta() -> RequestMeta | None:
    return _current.get()


@contextmanager
def request_meta_of(meta: RequestMeta | None) -> Iterator[None]:
    """Work done for a request elsewhere (a task) is recorded with that request's address."""
    token = _current.set(meta)
    try:
        yield
    finally:
        _current.reset(token)


class RequestMetaMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = sane_request_id(request.META.get("HTTP_X_REQUEST_ID")) or new_request_id()
        token = _current.set(RequestMeta(client_ip(request), user_agent(request)))
        id_token = set_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(id_token)
            _current.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response
