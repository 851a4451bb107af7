from __future__ import annotations

from typing import Any

from accounts import services
from accounts.management.user_command import UserCommand
from accounts.models import User


class Command(UserCommand):
    help = "Lift the login lockout of a user (by username, email or id)."

    def handle_user(self, target: User, **options: Any) -> None:
        if services.lockout_unlock_user(user_id=target.id):
            self.stdout.write(self.style.SUCCESS(f"Unlocked {target.username}."))
        else:
            self.stdout.write(f"{target.username} was not locked.")
