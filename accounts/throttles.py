"""Per-address limits on login, registration and password reset (DRF throttling on the cache).

The client address is DRF's `get_ident`, which honours `NUM_PROXIES`
(= `TRUSTED_PROXY_COUNT`): the socket peer unless trusted proxies say otherwise.
"""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from core.throttling import UserRateThrottle

logger = logging.getLogger(__name__)


class AddressRateThrottle(SimpleRateThrottle):
    """A per-address limit for one scope.

    With the cache down the limit is not enforced (logged): it guards load, not
    access. The account lockout, which does guard access, lives in the database.
    """

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.warning("throttle %s skipped: cache unavailable", self.scope, exc_info=True)
            return True


class LoginAddressThrottle(AddressRateThrottle):
    scope = "login_ip"


class RegisterAddressThrottle(AddressRateThrottle):
    scope = "register_ip"


class PasswordResetAddressThrottle(AddressRateThrottle):
    scope = "password_reset_ip"


class EmailVerifyResendThrottle(UserRateThrottle):
    """`THROTTLE_EMAIL_VERIFY_USER`: verification mails one user may ask for; fails closed (a mail each)."""

    scope = "email_verify_user"
    rate_setting = "THROTTLE_EMAIL_VERIFY_USER"
