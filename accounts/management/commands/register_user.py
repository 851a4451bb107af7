"""`manage.py register_user`: create one account, asked for in a terminal or given by flags.

The account goes through `accounts.services.user_create`, as `POST /users`
does: the same validators, roles, `new_user` event and audit row.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import services
from accounts.models import ROLE_ADMIN, ROLE_USER
from accounts.user_checks import (
    email_problems,
    full_name_problems,
    known_roles,
    password_validate,
    username_problems,
)

CANCELLED = "Cancelled; no user was created."


class Command(BaseCommand):
    help = (
        "Create one user. Missing fields are asked for in a terminal (the password twice, "
        "without echo); scripts give --username --email and --password-stdin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username")
        parser.add_argument("--email")
        parser.add_argument("--full-name", dest="full_name")
        parser.add_argument(
            "--role",
            action="append",
            dest="roles",
            default=[],
            metavar="ROLE",
            help="a role besides `user` (repeat for several)",
        )
        parser.add_argument("--admin", action="store_true", help="give the admin role (and the Django admin)")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input (for scripts)",
        )
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="never prompt: a missing field is an error",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Standard input carries the password with --password-stdin, so it cannot also answer prompts.
        self.can_prompt = options["interactive"] and not options["password_stdin"] and sys.stdin.isatty()
        roles = sorted({ROLE_USER, *options["roles"], *([ROLE_ADMIN] if options["admin"] else [])})
        unknown = sorted(set(roles) - known_roles())
        if unknown:
            raise CommandError(" ".join(f"Unknown role: {name}." for name in unknown))
        try:
            username = self._field("username", "Username: ", options["username"], username_problems)
            email = self._field("email", "Email: ", options["email"], email_problems)
            full_name = self._field(
                "full_name", "Full name (optional): ", options["full_name"], full_name_problems, optional=True
            )
            password = self._password(
                options["password_stdin"], username=username, email=email, full_name=full_name
            )
        except (KeyboardInterrupt, EOFError):
            raise CommandError(CANCELLED) from None
        try:
            user = services.user_create(
                username=username, email=email, password=password, full_name=full_name, roles=roles
            )
        except ValidationError as exc:  # someone took the name meanwhile
            raise CommandError(format_errors(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Created user {user.username} ({user.id}) with roles: {', '.join(user.roles)}."
            )
        )

    def _field(
        self,
        name: str,
        prompt: str,
        value: str | None,
        problems: Callable[[str], list[str]],
        *,
        optional: bool = False,
    ) -> str:
        """The flag's value, or asked for until it is acceptable; without a terminal, an error."""
        while True:
            if value is None:
                if optional and not self.can_prompt:
                    return ""
                if not self.can_prompt:
                    raise CommandError(f"--{name.replace('_', '-')} is required (no terminal to ask in).")
                value = input(prompt)
            value = value.strip()
            found = problems(value)
            if not found:
                return value
            message = f"{name}: {' '.join(found)}"
            if not self.can_prompt:
                raise CommandError(message)
            self.stderr.write(f"Error: {message}")
            value = None

    def _password(self, from_stdin: bool, **fields: str) -> str:
        """From stdin's first line, or asked twice without echo; refused while the validators object."""
        while True:
            if from_stdin:
                password = sys.stdin.readline().rstrip("\r\n")
                if not password:
                    raise CommandError("No password on standard input.")
            elif not self.can_prompt:
                raise CommandError("No password: give --password-stdin, or run in a terminal to be asked.")
            else:
                password = getpass.getpass("Password: ")
                if password != getpass.getpass("Password (again): "):
                    self.stderr.write("Error: Your passwords didn't match.")
                    continue
                if not password:
                    self.stderr.write("Error: Blank passwords aren't allowed.")
                    continue
            try:
                password_validate(password, **fields)
                return password
            except ValidationError as exc:
                message = f"password: {' '.join(exc.messages)}"
                if not self.can_prompt:
                    raise CommandError(message) from None
                self.stderr.write(f"Error: {message}")


def format_errors(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
    return " ".join(exc.messages)
