"""`/metrics`: Prometheus text for the allowed addresses or the bearer token, nobody else.

Written here rather than mounting django-prometheus' `ExportToDjangoView`:
that view is public, and it cannot add the outbox gauges, which are read from
the database at scrape time (a gauge kept in one worker's memory would be
wrong in every other worker).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

import prometheus_client
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import multiprocess
from prometheus_client.registry import Collector

from .http import client_ip
from .metrics_process import multiprocess_dir

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def address_allowed(ip: str | None, cidrs: Iterable[str]) -> bool:
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 from a dual-stack socket is loopback
    return any(address in network for network in _networks(tuple(cidrs)))


def _bearer(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _denied(detail: str, code: str, status: int) -> JsonResponse:
    response = JsonResponse({"detail": detail, "code": code}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response


#: Collectors the apps register (notifications: the outbox gauges), read at each scrape.
SCRAPED: list[Collector] = []


def metrics_collector_register(collector: Collector) -> None:
    """An app's gauges read when `/metrics` is scraped, registered once from its `AppConfig.ready()`."""
    SCRAPED.append(collector)


class _Scrape(Collector):
    def __init__(self, *sources: Any) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Any]:
        for source in self.sources:
            yield from source.collect()


def metrics(request: HttpRequest) -> HttpResponse:
    token = _bearer(request)
    expected = settings.METRICS_TOKEN
    if token is not None and expected:
        if not hmac.compare_digest(token.encode(), expected.encode()):
            return _denied("Invalid metrics token.", "authentication_failed", 401)
    elif not address_allowed(client_ip(request), settings.METRICS_ALLOWED_CIDRS):
        return _denied("Metrics are not available to this address.", "permission_denied", 403)

    if multiprocess_dir() is not None:
        base = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(base)
    else:
        base = prometheus_client.REGISTRY
    page = prometheus_client.generate_latest(_Scrape(base, *SCRAPED))  # type: ignore[arg-type]
    return HttpResponse(page, content_type=prometheus_client.CONTENT_TYPE_PLAIN_0_0_4)
