"""Who is asking, from where: set once per request, read by the audit log.

A context variable rather than an argument threaded through every service:
audit rows are a side record, and services called from commands and tasks
simply have no request (None).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse

from .http import client_ip, user_agent


@dataclass(frozen=True)
class RequestMeta:
    ip: str | None
    user_agent: str


_current: ContextVar[RequestMeta | None] = ContextVar("request_meta", default=None)


def current_request_meta() -> RequestMeta | None:
    return _current.get()


class RequestMetaMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current.set(RequestMeta(client_ip(request), user_agent(request)))
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)
