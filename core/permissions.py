"""Permissions every app's API uses; they read the authenticated principal, whichever app made it."""

from typing import Any

from django.conf import settings
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .errors import MFARequired

#: The role the administrators' endpoints are reserved to (`IsAdmin`), as `MFA_REQUIRED_ROLES` names it.
ADMIN_ROLE = "admin"
#: The RFC 8176 `amr` value of a session that passed a second factor.
AMR_MFA = "mfa"


def session_passed_mfa(request: Request) -> bool:
    """Whether the caller's session was opened with a second factor (its token's `amr` has `mfa`)."""
    return AMR_MFA in getattr(request.auth, "amr", ())


def role_mfa_check(request: Request, role: str) -> None:
    """Acting as `role` from a session without MFA, while `MFA_REQUIRED_ROLES` names it: 403
    `mfa_required` (API.md, MFA). The caller can still log in and enroll; a login with the second
    factor gives a session that passes."""
    if role in settings.MFA_REQUIRED_ROLES and not session_passed_mfa(request):
        raise MFARequired(
            f"The {role} role requires two-factor authentication: log in again with your second "
            "factor (or turn it on first: POST /auth/mfa/totp, then log in again)."
        )


class IsAdmin(BasePermission):
    """Superusers and members of the `admin` role, read from the cached user, not the token; from
    a session that passed MFA while `MFA_REQUIRED_ROLES` names `admin` (403 `mfa_required`)."""

    message = "Administrator rights are required."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and getattr(user, "is_admin", False)):
            return False
        role_mfa_check(request, ADMIN_ROLE)
        return True
