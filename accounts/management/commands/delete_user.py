"""`manage.py delete_user USERNAME|EMAIL|ID`: soft delete (an administrator's), or `--hard`.

Both go through the services the API uses, so the user's sessions end and
the cache forgets them at once; a soft delete stays restorable by an
administrator (not by the owner: a ban is a ban) for `ACCOUNT_RESTORE_DAYS`.
A refusal of the service (the last active administrator: `last_admin`) is the
command's error, with exit status 1, and nothing is deleted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from accounts import services
from accounts.management.user_command import UserCommand
from accounts.models import User
from core.errors import ServiceError


class Command(UserCommand):
    help = "Delete a user (by username, email or id): soft by default, --hard for good."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--hard", action="store_true", help="remove the account and its data for good")
        parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    def handle_user(self, target: User, hard: bool, yes: bool, **options: Any) -> None:  # type: ignore[override]
        name = f"{target.username} <{target.email}>"
        if target.deleted_at is not None and not hard:
            self.stdout.write(
                f"{name} was already deleted on {target.deleted_at:%Y-%m-%d %H:%M} UTC; "
                "--hard removes it for good."
            )
            return
        if not yes:
            action = "Remove for good" if hard else "Delete"
            try:
                answer = input(f"{action} {name}? [y/N] ")
            except (EOFError, KeyboardInterrupt):
                answer = ""
            if answer.strip().lower() not in {"y", "yes"}:
                raise CommandError("Cancelled; nothing was deleted.")
        try:
            if hard:
                services.user_hard_delete(user_id=target.id)
            else:
                deleted = services.user_soft_delete(user_id=target.id)
        except ServiceError as exc:
            raise CommandError(f"{name} was not deleted: {exc.detail} ({exc.code})") from None
        if hard:
            self.stdout.write(self.style.SUCCESS(f"Removed {name} for good; its sessions are revoked."))
        else:
            assert deleted.deleted_at is not None
            until = deleted.deleted_at + timedelta(days=settings.ACCOUNT_RESTORE_DAYS)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Deleted {name}; its sessions are revoked. An administrator can restore it for "
                    f"{settings.ACCOUNT_RESTORE_DAYS} days (until {until:%Y-%m-%d})."
                )
            )
