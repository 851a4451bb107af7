"""Facts about the HTTP request that several apps need."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

#: Route pattern for object ids in URLs: anything else is a 404 before any view runs.
UUID_PATTERN = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: the socket peer, unless trusted proxies say otherwise.

    Only the last `TRUSTED_PROXY_COUNT` entries of `X-Forwarded-For` were
    written by proxies we run; anything left of them is the client's own word.
    Same rule as DRF's throttles (`NUM_PROXIES`), so limits and sessions agree.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [
        part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()
    ]
    if not forwarded:
        return remote
    candidate = forwarded[-min(proxies, len(forwarded))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:  # a malformed header is not an address to store
        return remote


def user_agent(request: HttpRequest) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:512]
