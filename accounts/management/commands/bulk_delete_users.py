"""`manage.py bulk_delete_users FILE`: delete the users a JSON list names (`-`: stdin).

Entries: a username, an email or an id, or an object with one of
`username`, `email`, `id`. Soft delete by default (restorable, as
`DELETE /users/{id}`), `--hard` for good; each user goes through the same
service as the API, so sessions end and caches forget at once. Same checks,
dry run and exit status as `bulk_create_users`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from accounts.bulk_rows import BulkResult
from accounts.services.bulk_delete import users_bulk_delete

from .bulk_create_users import BulkCommand


class Command(BulkCommand):
    help = (
        "Delete the users a JSON list names (usernames, emails, ids, or objects with one of them; "
        "- for stdin). Soft by default, --hard for good. Unknown names are reported; any bad entry "
        "means nothing is deleted unless --continue-on-error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--hard", action="store_true", help="remove the accounts and their data for good")

    def run(self, path: Path, options: dict[str, Any]) -> BulkResult:
        return users_bulk_delete(
            path=path,
            hard=options["hard"],
            continue_on_error=options["continue_on_error"],
            dry_run=options["dry_run"],
            report=self.report,
            progress=self.progress,
        )

    def summarize(self, result: BulkResult, options: dict[str, Any]) -> None:
        verb = "Removed for good" if options["hard"] else "Deleted"
        done = f"{verb}: {result.done} user{'' if result.done == 1 else 's'}."
        if result.unchanged:
            done += f" {result.unchanged} already deleted, left as they were."
        self.write_summary(result, done, options)
