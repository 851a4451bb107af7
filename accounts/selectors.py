"""Reads of account data that are more than one ORM call, always scoped to one user."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.errors import NotFound
from core.ids import Id
from core.read_through import ReadThrough

from .api_shapes import api_time, user_admin_api_shape
from .exports import export_sections_of
from .models import AuditEvent, AuthSession, RecoveryCode, User


def _roles_load(_: str) -> list[dict[str, str]]:
    return [
        {"name": group.name, "description": getattr(getattr(group, "role", None), "description", "")}
        for group in Group.objects.select_related("role").order_by("name")
    ]


#: `roles:all`: every role with its description; the role services write it after a change.
ROLES: ReadThrough[list[dict[str, str]]] = ReadThrough(
    "roles", load=_roles_load, valid=lambda cached: isinstance(cached, list)
)
ROLES_ALL = "all"


def roles_list() -> list[dict[str, str]]:
    """Every role with its description, read through the cache."""
    return list(ROLES.get(ROLES_ALL) or [])


def user_with_roles(*, user_id: Id) -> User:
    """A user with its roles read in the same go (for the API's user shape); `NotFound` if none."""
    try:
        user = (
            User.objects.select_related("totp_device").prefetch_related("groups").filter(id=user_id).first()
        )
    except (ValidationError, ValueError):  # not a UUID
        user = None
    if user is None:
        raise NotFound("User not found.")
    return user


def user_find(identifier: str) -> User | None:
    """A user, deleted or not, by username (any case), email or id, as the user commands take them.

    The username wins over an id: a username may look like a UUID.
    """
    identifier = identifier.strip()
    if not identifier:
        return None
    user = User.objects.by_login(identifier).first()
    if user is None:
        try:
            user = User.objects.filter(id=uuid.UUID(identifier)).first()
        except ValueError:
            return None
    return user


def _time(value: datetime | None) -> str | None:
    return api_time(value) if value else None


def user_export(*, user_id: Id) -> dict[str, Any]:
    """Everything the service stores about a user, for `GET /users/me/export`.

    Secrets are left out (password hash, refresh-token hashes, the TOTP secret, recovery codes and
    their hashes, MFA tokens); everything else is in: of MFA, whether it is on and the codes left.
    """
    user = user_with_roles(user_id=user_id)
    sessions = AuthSession.objects.filter(user_id=user_id).order_by("-created_at")
    audit = AuditEvent.objects.filter(user_id=user_id).order_by("-created_at")
    return {
        "exported_at": api_time(timezone.now()),
        "profile": user_admin_api_shape(user),
        "roles": user.roles,
        "mfa": {
            "totp": user.mfa_enabled,
            "recovery_codes_left": RecoveryCode.objects.filter(user_id=user_id, used_at__isnull=True).count(),
        },
        "sessions": [
            {
                "id": str(s.id),
                "created_at": _time(s.created_at),
                "last_used_at": _time(s.last_used_at),
                "expires_at": _time(s.expires_at),
                "revoked_at": _time(s.revoked_at),
                "ip": s.ip,
                "user_agent": s.user_agent,
            }
            for s in sessions
        ],
        # Linked providers (social login); never a provider token (none is stored).
        "identities": [
            {"provider": i.provider, "uid": i.uid, "linked_at": _time(i.created), "extra_data": i.extra_data}
            for i in user.social_auth.order_by("created")
        ],
        "security_events": [
            {
                "kind": e.kind,
                "created_at": _time(e.created_at),
                "ip": e.ip,
                "user_agent": e.user_agent,
                "detail": e.detail,
            }
            for e in audit[:1000]
        ],
        # What the apps above this one keep (resumes, LLM settings, ...): they register it.
        **export_sections_of(user_id=user_id),
    }
