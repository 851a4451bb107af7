"""Limits that fail closed: while their cache is down they refuse (503 with `Retry-After`).

The per-address limits on login (`accounts.throttles`) let requests through when the cache fails:
they guard load, and the account lockout, which guards access, lives in the database. A limit on
what one user may make the service do (mail, parse, store, start a processing) is different: "no
limit while Redis is down" is what a flood would wait for, so it refuses instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from .errors import Unavailable

logger = logging.getLogger(__name__)

#: Seconds a client is asked to wait when a limit's cache failed.
CACHE_DOWN_RETRY_AFTER = 5


@contextmanager
def cache_failure_refuses(log: logging.Logger, warning: str, detail: str, code: str) -> Iterator[None]:
    """Run a limit's cache calls; if they fail, log `warning` and refuse: `Unavailable` (503) with
    `detail` and `code`, `Retry-After` `CACHE_DOWN_RETRY_AFTER`."""
    try:
        yield
    except Exception:
        log.warning(warning, exc_info=True)
        raise Unavailable(detail, code=code, retry_after=CACHE_DOWN_RETRY_AFTER) from None


class UserRateThrottle(SimpleRateThrottle):
    """Per authenticated user (DRF's rate syntax), on the cache: one count for every worker on Redis.

    Subclasses set `scope`, `rate_setting` (the setting's name, read per request so an operator's
    change applies) and `unavailable_detail`. DRF keeps a user's recent request times in one
    entry, read then written: two requests at the same instant in two workers can both pass at the
    edge of the limit, which is no flood.
    """

    rate_setting = ""
    unavailable_detail = "This cannot be accepted right now; try again shortly."

    def get_rate(self) -> str:
        return str(getattr(settings, self.rate_setting))

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}

    def allow_request(self, request: Request, view: Any) -> bool:
        with cache_failure_refuses(
            logger,
            f"throttle {self.scope}: the cache failed; refusing",
            self.unavailable_detail,
            "throttle_unavailable",
        ):
            return bool(super().allow_request(request, view))
