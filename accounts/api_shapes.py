"""The user as the API shows it: the one place its fields and their formats are built.

`GET /users/me` (from the cached `Principal`, no serializer on the hot path),
register, restore and `PATCH /users/me` (through `UserSerializer`), the
administrators' `/users` endpoints (`AdminUserSerializer`), the export,
`list_users --json` and the bulk tools all call these functions, so the
shape cannot drift between them. A test holds them equal to what DRF's own
fields would render.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from .models import User, user_is_admin


class ShownUser(Protocol):
    """What the shape reads: a `User` row, or the cached `Principal` (`accounts.cache`), which
    keeps its times rendered already. A protocol, so this module needs neither of their modules'
    other names (the cache imports this one)."""

    @property
    def id(self) -> Any: ...
    @property
    def username(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def email_verified(self) -> bool: ...
    @property
    def email_pending(self) -> str: ...
    @property
    def full_name(self) -> str: ...
    @property
    def roles(self) -> Iterable[str]: ...
    @property
    def is_active(self) -> bool: ...
    @property
    def is_superuser(self) -> bool: ...
    @property
    def mfa_enabled(self) -> bool: ...
    @property
    def created_at(self) -> datetime | str: ...
    @property
    def updated_at(self) -> datetime | str: ...


#: The fields of a user as `/users/me` shows it (API.md), in order.
USER_FIELDS = (
    "id",
    "username",
    "email",
    "email_verified",
    "email_pending",
    "full_name",
    "roles",
    "is_active",
    "is_admin",
    "mfa",
    "created_at",
    "updated_at",
)
#: What administrators see besides.
ADMIN_USER_FIELDS = (*USER_FIELDS, "is_staff", "is_superuser", "deleted_at", "last_login")


def api_time(value: datetime) -> str:
    """A timestamp exactly as DRF's DateTimeField renders it (UTC, `Z`)."""
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _time(value: datetime | str | None) -> str | None:
    # The cached Principal keeps its times rendered already.
    if value is None or isinstance(value, str):
        return value
    return api_time(value)


def user_api_shape(user: ShownUser) -> dict[str, Any]:
    """The `/users/me` body for a `User` row or a cached `Principal`.

    A `User` should come with its groups prefetched and its TOTP device joined
    (`USER_SHAPE_RELATED`): its roles and `mfa` are then read without a query.
    """
    roles = list(user.roles)
    return {
        "id": str(user.id),
        "username": user.username,
        "email": user.email,
        "email_verified": user.email_verified,
        "email_pending": user.email_pending or None,
        "full_name": user.full_name,
        "roles": roles,
        "is_active": user.is_active,
        "is_admin": user_is_admin(is_superuser=user.is_superuser, roles=roles),
        "mfa": user.mfa_enabled,
        "created_at": _time(user.created_at),
        "updated_at": _time(user.updated_at),
    }


def user_admin_api_shape(user: User) -> dict[str, Any]:
    """A user as administrators see it (`/users`, `list_users --json`, the export's profile)."""
    return {
        **user_api_shape(user),
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "deleted_at": _time(user.deleted_at),
        "last_login": _time(user.last_login),
    }
