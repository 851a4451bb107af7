from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from accounts import services
from accounts.management.user_command import UserCommand
from accounts.models import User
from core.errors import ServiceError


class Command(UserCommand):
    help = (
        "Set a user's roles (replacing the current ones), as an admin edit does: audited, emitted, notified."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("roles", nargs="+", help="role names, e.g. user moderator")

    def handle_user(self, target: User, roles: list[str], **options: Any) -> None:  # type: ignore[override]
        try:
            services.user_set_roles(user=target, roles=roles)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        except ServiceError as exc:  # the last active administrator keeps `admin`
            raise CommandError(f"{target.username}: {exc.detail} ({exc.code})") from None
        self.stdout.write(self.style.SUCCESS(f"{target.username}: {', '.join(sorted(set(roles)))}"))
