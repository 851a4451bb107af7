"""`manage.py createsuperuser`: Django's command, with the account made by `accounts.services.user_create`.

Django's own command saves the user through the model manager. This one takes
its place (`accounts` is listed before `django.contrib.auth` in
`INSTALLED_APPS`, and the first app's command wins) and makes the account as
`register_user --admin` does: the same checks, the `user` and `admin` roles,
`is_superuser`, the `new_user` event and the audit row. The interface is
Django's: questions in a terminal, or `--noinput` with `--username` /
`--email` or the `DJANGO_SUPERUSER_USERNAME` / `_EMAIL` / `_PASSWORD`
variables (without a password the account gets an unusable one, as Django's).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from accounts import services
from accounts.models import ROLE_ADMIN, ROLE_USER
from accounts.user_checks import email_problems, full_name_problems, password_validate, username_problems

from .register_user import CANCELLED, format_errors
from .register_user import Command as RegisterUser


class Command(RegisterUser):
    help = "Create a superuser (roles user and admin), through the service every account goes through."
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username")
        parser.add_argument("--email")
        parser.add_argument("--full-name", dest="full_name")
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="never prompt: fields come from the flags or the DJANGO_SUPERUSER_* variables",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        interactive = options["interactive"]
        stdin = options.get("stdin") or sys.stdin
        self.can_prompt = interactive and stdin.isatty()
        if not interactive:
            for name in ("username", "email", "full_name", "password"):
                if options.get(name) is None:
                    options[name] = os.environ.get(f"DJANGO_SUPERUSER_{name.upper()}")
        try:
            username = self._field("username", "Username: ", options["username"], username_problems)
            email = self._field("email", "Email: ", options["email"], email_problems)
            # Not asked for, as Django asks only for the required fields.
            full_name = self._field("full_name", "", options["full_name"] or "", full_name_problems)
            fields = {"username": username, "email": email, "full_name": full_name}
            if interactive:
                password: str | None = self._password(False, **fields)
            else:
                password = options["password"]
                if password is not None:
                    self._check_password(password, fields)
        except (KeyboardInterrupt, EOFError):
            raise CommandError(CANCELLED) from None
        try:
            services.user_create(
                username=username,
                email=email,
                full_name=full_name,
                password=password,
                roles=[ROLE_USER, ROLE_ADMIN],
                is_superuser=True,
                validate_password=False,  # checked above
            )
        except ValidationError as exc:  # someone took the name meanwhile
            raise CommandError(format_errors(exc)) from None
        if options["verbosity"] >= 1:
            self.stdout.write("Superuser created successfully.")

    def _check_password(self, password: str, fields: dict[str, str]) -> None:
        try:
            password_validate(password, **fields)
        except ValidationError as exc:
            raise CommandError(f"password: {' '.join(exc.messages)}") from None
