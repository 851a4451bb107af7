from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import services
from accounts.selectors import user_find


class Command(BaseCommand):
    help = "Lift the login lockout of a user (by username, email or id)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="username, email or id")

    def handle(self, *args: Any, user: str, **options: Any) -> None:
        target = user_find(user)
        if target is None:
            raise CommandError(f"No user {user!r}.")
        if services.lockout_unlock_user(user_id=target.id):
            self.stdout.write(self.style.SUCCESS(f"Unlocked {target.username}."))
        else:
            self.stdout.write(f"{target.username} was not locked.")
