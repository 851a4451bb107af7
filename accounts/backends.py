"""Authentication backends for Django's `authenticate()` (the admin's login form).

`LockoutModelBackend` replaces Django's `ModelBackend` so that the admin's
login form is no side door: the same lockout service as the API's login
(`credentials_check`), the same per-address limit (`THROTTLE_LOGIN_IP`,
sharing the API login's counter), and a locked or throttled caller gets the
form's ordinary error (the backend raises `PermissionDenied`, which
`authenticate()` turns into "no user"), never a 500.

`AdminRoleBackend`: administrators (`accounts.models.user_is_admin`) may do in
the Django admin what a superuser may. One place for it, rather than
per-model permission rows to keep in step with the role: `is_admin` in the
API and in the back-office mean the same thing.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from core.errors import RateLimited, ServiceError

from .models import User, user_is_admin
from .services.credentials import credentials_check
from .throttles import LoginAddressThrottle

logger = logging.getLogger(__name__)


class LockoutModelBackend(ModelBackend):
    def authenticate(  # type: ignore[override]
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        if username is None:
            username = kwargs.get(User.USERNAME_FIELD)
        if username is None or password is None:
            return None  # not a password login (a social backend's call, say)
        if request is not None and not LoginAddressThrottle().allow_request(request, None):
            logger.warning("admin login throttled for %s", request.META.get("REMOTE_ADDR"))
            raise PermissionDenied("Too many login attempts from this address.")
        try:
            user = credentials_check(identifier=username, password=password)
        except ServiceError as exc:
            if isinstance(exc, RateLimited):  # locked: stop here, whatever other backends would say
                raise PermissionDenied(exc.detail) from None
            return None  # wrong credentials: counted already
        return user if self.user_can_authenticate(user) else None


class AdminRoleBackend(ModelBackend):
    def _is_admin(self, user_obj: Any) -> bool:
        if not user_obj.is_active or getattr(user_obj, "deleted_at", None) is not None:
            return False
        cached = getattr(user_obj, "_admin_role_cache", None)
        if cached is None:
            cached = user_is_admin(
                is_superuser=user_obj.is_superuser, roles=user_obj.groups.values_list("name", flat=True)
            )
            user_obj._admin_role_cache = cached
        return bool(cached)

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> None:
        return None  # ModelBackend authenticates; this backend only grants permissions

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        return self._is_admin(user_obj)

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        return self._is_admin(user_obj)
