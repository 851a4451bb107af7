"""`manage.py bulk_create_users FILE`: create users from a JSON array or JSON Lines (`-`: stdin).

Rows: `username`, `email`, `full_name?`, `role?`, and `password` or
`password_hash` (Django's formats, or the `$2b$12$...` bcrypt of the earlier
services: those users log in with their old passwords, and the hash is
upgraded at the first login), and `email_verified?` (true: the address was verified by the
earlier service, so its owner is not asked again; no verification mail is sent either way, the
owners ask for one with `/auth/email/verify/resend`). The rules live in `accounts.services.bulk_create`;
this file is the command-line face shared with `bulk_delete_users`: the
input (stdin spooled to a temporary file, since the import reads it twice),
the report on stderr, tqdm on a terminal, the summary and the exit status.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from accounts.bulk_rows import BulkResult, Progress, RowError
from accounts.services.bulk_create import users_bulk_create

# No tqdm monitor thread: the hashing pool forks, and a fork should not copy a running thread.
tqdm.monitor_interval = 0


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


class BulkCommand(BaseCommand):
    """What the bulk commands share; subclasses name the service and word the summary."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="a JSON array or JSON Lines file; - reads standard input")
        parser.add_argument(
            "--continue-on-error",
            action="store_true",
            help="apply the good rows even if some are bad (the exit status still says it failed)",
        )
        parser.add_argument("--dry-run", action="store_true", help="check every row, change nothing")

    def handle(self, *args: Any, file: str, **options: Any) -> None:
        self.raw_stderr: TextIO = options.get("stderr") or sys.stderr
        self.tty = bool(getattr(self.raw_stderr, "isatty", lambda: False)())
        with self.input_path(file) as path:
            result = self.run(path, options)
        self.summarize(result, options)
        if not result.ok:
            raise CommandError(f"{result.failed} of {result.rows} rows failed.")

    def run(self, path: Path, options: dict[str, Any]) -> BulkResult:
        raise NotImplementedError

    def summarize(self, result: BulkResult, options: dict[str, Any]) -> None:
        raise NotImplementedError

    @contextmanager
    def input_path(self, file: str) -> Iterator[Path]:
        """The file itself, or standard input copied to a temporary file (read twice, so it must be seekable)."""
        if file != "-":
            path = Path(file)
            if not path.is_file():
                raise CommandError(f"No such file: {file}")
            yield path
            return
        with tempfile.NamedTemporaryFile(prefix="bulk-users-", suffix=".json") as spool:
            source = getattr(sys.stdin, "buffer", None)
            if source is not None:
                shutil.copyfileobj(source, spool)
            else:  # a text stream without bytes underneath (tests, embedded callers)
                while chunk := sys.stdin.read(1 << 16):
                    spool.write(chunk.encode())
            spool.flush()
            yield Path(spool.name)

    def report(self, error: RowError) -> None:
        """Each bad row on stderr, with its line number; around the bar on a terminal."""
        if self.tty:
            tqdm.write(str(error), file=self.raw_stderr)
        else:
            self.stderr.write(str(error))

    def progress(self, description: str, total: int | None) -> Progress:
        """A tqdm bar on a terminal (stderr); nothing when the output goes to a file or a pipe."""
        return tqdm(desc=description, total=total, unit=" rows", file=self.raw_stderr, disable=not self.tty)

    def write_summary(self, result: BulkResult, done: str, options: dict[str, Any]) -> None:
        good = result.rows - result.failed
        self.stdout.write(f"{result.rows} rows checked: {good} good, {result.failed} bad.")
        if options["dry_run"]:
            self.stdout.write("Dry run: nothing was written.")
        elif result.done or not result.failed:
            self.stdout.write(self.style.SUCCESS(done))
        elif not options["continue_on_error"]:
            self.stdout.write(
                "Nothing was written: fix the rows above, or use --continue-on-error to apply the good ones."
            )


class Command(BulkCommand):
    help = (
        "Create users from a JSON array or JSON Lines file (- for stdin). Every row is checked first; "
        "any bad row means nothing is written unless --continue-on-error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--workers",
            type=positive_int,
            default=os.cpu_count() or 1,
            help="processes hashing plaintext passwords (default: the number of CPU cores)",
        )

    def run(self, path: Path, options: dict[str, Any]) -> BulkResult:
        return users_bulk_create(
            path=path,
            continue_on_error=options["continue_on_error"],
            dry_run=options["dry_run"],
            workers=options["workers"],
            report=self.report,
            progress=self.progress,
        )

    def summarize(self, result: BulkResult, options: dict[str, Any]) -> None:
        self.write_summary(result, f"Created {result.done} user{'' if result.done == 1 else 's'}.", options)
