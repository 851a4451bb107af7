"""Permissions every app's API uses; they read the authenticated principal, whichever app made it."""

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class IsAdmin(BasePermission):
    """Superusers and members of the `admin` role, read from the cached user, not the token."""

    message = "Administrator rights are required."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "is_admin", False))
