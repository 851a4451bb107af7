"""`THROTTLE_UPLOAD_USER`: how many resumes and requirements one user may create (DRF throttling).

Checked in the view's `initial()`, before the handler touches `request.data`: a refused upload's
body is never read, let alone parsed or written to disk.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from accounts.authentication import principal

from .processing_limit import cache_failure_refuses

logger = logging.getLogger(__name__)


class UploadUserThrottle(SimpleRateThrottle):
    """Per user, on the cache (Redis in production: one count for every worker).

    DRF keeps each user's recent request times in one cache entry, read then written: two
    uploads of one user at the same instant in two workers can both pass at the edge of the
    limit. The limit guards disk and CPU against a flood, which one extra upload does not make.

    A cache that fails refuses the upload (503), unlike the per-address limits on login: the
    parse and the disk write this one guards cost more than a refusal, and "no limit while Redis
    is down" is what a flood would wait for.
    """

    scope = "upload_user"

    def get_rate(self) -> str:
        return str(settings.THROTTLE_UPLOAD_USER)  # read per request: an operator's change applies

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": principal(request).id}

    def allow_request(self, request: Request, view: Any) -> bool:
        with cache_failure_refuses(
            logger,
            "upload throttle: the cache failed; refusing the upload",
            "Uploads cannot be accepted right now; try again shortly.",
            "throttle_unavailable",
        ):
            return bool(super().allow_request(request, view))
