"""`manage.py list_users`: every account as a table, or as JSON for scripts.

Streams: users are read `--chunk-size` at a time (a server-side cursor on
PostgreSQL), with one roles query per chunk, and each row is written as soon
as it is read, so 100,000 users print in constant memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Prefetch, Q, QuerySet

from accounts.api_shapes import user_admin_api_shape
from accounts.models import User

COLUMNS = (("USERNAME", 20), ("EMAIL", 30), ("ROLES", 16), ("ACTIVE", 6), ("DELETED", 16), ("CREATED", 16))
LAST_COLUMN = "LAST LOGIN"


def _short_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


class Command(BaseCommand):
    help = "List users: username, email, roles, active, deleted, created, last login (times in UTC)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", help="only users with this role")
        activity = parser.add_mutually_exclusive_group()
        activity.add_argument("--active", action="store_true", help="only active users")
        activity.add_argument("--inactive", action="store_true", help="only inactive users")
        parser.add_argument("--search", help="a part of the username, email or full name (any case)")
        parser.add_argument("--json", action="store_true", help="one JSON array, for scripts")
        parser.add_argument(
            "--chunk-size", type=int, default=2000, help="users read per query (default 2000)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        users = self._users(options)
        try:
            if options["json"]:
                self._json(users)
            else:
                self._table(users)
        except BrokenPipeError:  # `list_users | head`: the reader has seen enough
            pass

    def _users(self, options: dict[str, Any]) -> Iterator[User]:
        queryset: QuerySet[User] = (
            User.objects.order_by("created_at", "id")
            .select_related("totp_device")
            .prefetch_related(Prefetch("groups", queryset=Group.objects.only("id", "name")))
        )
        if options["role"]:
            queryset = queryset.filter(groups__name=options["role"])
        if options["active"] or options["inactive"]:
            queryset = queryset.filter(is_active=options["active"])
        if options["search"]:
            term = options["search"]
            queryset = queryset.filter(
                Q(username__icontains=term) | Q(email__icontains=term) | Q(full_name__icontains=term)
            )
        return queryset.iterator(chunk_size=max(1, options["chunk_size"]))

    def _table(self, users: Iterator[User]) -> None:
        self.stdout.write(self._line([name for name, _ in COLUMNS] + [LAST_COLUMN]))
        count = 0
        for user in users:
            count += 1
            self.stdout.write(
                self._line(
                    [
                        user.username,
                        user.email,
                        ",".join(sorted(group.name for group in user.groups.all())) or "-",
                        "yes" if user.is_active else "no",
                        _short_time(user.deleted_at),
                        _short_time(user.created_at),
                        _short_time(user.last_login),
                    ]
                )
            )
        self.stdout.write(f"{count} user{'' if count == 1 else 's'}.")

    @staticmethod
    def _line(values: list[str]) -> str:
        # Fixed widths: the table starts printing before the longest value is known.
        cells = [f"{value:<{width}}" for value, (_, width) in zip(values, COLUMNS, strict=False)]
        return "  ".join([*cells, *values[len(COLUMNS) :]]).rstrip()

    def _json(self, users: Iterator[User]) -> None:
        self.stdout.write("[", ending="")
        separator = "\n"
        for user in users:
            row = user_admin_api_shape(user)  # as `GET /users/{id}` shows it
            self.stdout.write(separator + json.dumps(row, ensure_ascii=False), ending="")
            separator = ",\n"
        self.stdout.write("\n]")
