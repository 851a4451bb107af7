"""The base of the commands about one user (`delete_user`, `set_roles`, `unlock_user`, `mfa_reset`)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from accounts.selectors import user_find


class UserCommand(BaseCommand):
    """Takes the user as its first argument (username, email or id, as `user_find` reads them) and
    hands the account to `handle_user`; an unknown one is the command's error."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="username, email or id")

    def handle(self, *args: Any, user: str, **options: Any) -> None:
        target = user_find(user)
        if target is None:
            raise CommandError(f"No user {user!r}.")
        self.handle_user(target, **options)

    def handle_user(self, target: User, **options: Any) -> None:
        raise NotImplementedError
