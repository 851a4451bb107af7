"""`manage.py mfa_reset USER`: a user lost their authenticator (API.md, MFA).

Run with shell access, so it asks for no second factor (docs/operations.md). Through the same
service as the Django admin's reset: audited (the actor is nobody: the shell), emitted
(`mfa_disabled`, `by: command`), and the user is told.
"""

from __future__ import annotations

from typing import Any

from accounts.management.user_command import UserCommand
from accounts.models import User
from accounts.services.mfa import mfa_reset


class Command(UserCommand):
    help = "Remove a user's two-factor authentication (a lost device): TOTP and recovery codes."

    def handle_user(self, target: User, **options: Any) -> None:
        if mfa_reset(user_id=target.id, actor_id=None, by="command"):
            self.stdout.write(
                self.style.SUCCESS(f"Two-factor authentication of {target.username} removed; they were told.")
            )
        else:
            self.stdout.write(f"{target.username} had no two-factor authentication.")
