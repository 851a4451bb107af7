"""Administrators (`accounts.models.user_is_admin`) may do in the Django admin what a superuser may.

One place for it, rather than per-model permission rows to keep in step with
the role: `is_admin` in the API and in the back-office mean the same thing.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

from .models import user_is_admin


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
