"""Re-authentication: one rule for every change of how an account is reached (API.md, Accounts →
"Re-authentication"): linking an identity, an email change, deleting the account, the MFA changes.

- An account with a usable password proves itself with it: `password_confirm`, the lockout's
  check (a wrong one counts as a failed login and is a 400 on the field; a locked account 429).
- An account without one (made by social login) proves itself with its session: opened less
  than `REAUTH_MAX_AGE` seconds ago. The session's `created_at` is read from the database, not
  from the token's `auth_time`: tokens issued before that claim existed have none, and the row is
  what a revocation changes.
- Otherwise 403 `reauth_required`: the client sends the user through login again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from core.errors import Forbidden

from ..models import AuthSession, User
from .credentials import password_confirm


class ReauthRequired(Forbidden):
    code = "reauth_required"


def reauth_required() -> ReauthRequired:
    return ReauthRequired(
        "This change needs a recent login: send your current password, or log in again "
        f"(a session opened less than {settings.REAUTH_MAX_AGE} s ago) and retry."
    )


def session_is_recent(*, user_id: Any, session_id: Any) -> bool:
    opened = (
        AuthSession.objects.active()
        .filter(id=session_id, user_id=user_id)
        .values_list("created_at", flat=True)
        .first()
    )
    return opened is not None and timezone.now() - opened < timedelta(seconds=settings.REAUTH_MAX_AGE)


def reauth_confirm(
    *, user: User, session_id: Any, password: str | None, field: str = "current_password"
) -> None:
    """The caller proved it is the account's owner just now, or this raises.

    Call it outside the change's transaction: a counted wrong password must not roll back with
    the change it refused (as `password_confirm` says).
    """
    if user.has_usable_password():
        if not password:
            raise reauth_required()
        password_confirm(user=user, password=password, field=field)
        return
    if not session_is_recent(user_id=user.id, session_id=session_id):
        raise reauth_required()
