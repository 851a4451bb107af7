"""`bulk_create_users`: many accounts from a JSON array or JSON Lines file.

The one path that does not loop over `user_create`: that is a transaction and
about ten queries per user. It reads the file twice instead, streaming both
times, so 100,000 rows never sit in memory together:

1. check every row (fields, roles, passwords, duplicates in the file, and, one
   query per `BATCH_SIZE` rows, clashes with the database), reporting each
   bad row by line number;
2. only when that found nothing wrong (or `continue_on_error`), write in
   batches: users, their roles, their `new_user` events and audit rows with
   one multi-row INSERT (COPY on PostgreSQL) each, built by the functions
   `user_create` builds its rows with, and the events in the transaction of
   their users, as the outbox requires. Plaintext passwords are hashed on
   every core.

Without `continue_on_error` the write pass is one transaction, so even an
account created by someone else between the two passes cannot leave half an
import behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower

from core.ids import Id
from notifications.models import OutboxEvent
from notifications.services import event_fields, outbox_relay_after_commit

from ..bulk_rows import (
    BadJSON,
    BulkResult,
    ProgressFactory,
    Reporter,
    RowError,
    batched,
    ignore,
    json_rows,
    no_progress,
    rows_checked,
)
from ..bulk_sql import insert_rows
from ..hash_pool import PasswordHashing
from ..models import AuditEvent, User, normalize_email
from ..user_checks import NewUser, checked_row, known_roles, new_user_clean
from .audit import AuditKind, audit_fields
from .users import new_user_fields, new_user_payload

#: Rows per uniqueness query, per insert batch and per hashing round.
BATCH_SIZE = 1000


def users_bulk_create(
    *,
    path: str | Path,
    continue_on_error: bool = False,
    dry_run: bool = False,
    workers: int = 1,
    actor_id: Id | None = None,
    report: Reporter = ignore,
    progress: ProgressFactory = no_progress,
) -> BulkResult:
    """Create the users of a JSON array or JSON Lines file; see the module docstring.

    Every bad row is reported (`report`) with its line number. Without
    `continue_on_error` any bad row means nothing is written.
    """
    result = BulkResult(dry_run=dry_run)
    roles = known_roles()
    before = _fingerprint(path)
    bad = _create_check(path, roles, result, report, progress)
    if dry_run or result.rows == result.failed or (result.failed and not continue_on_error):
        return result
    if _fingerprint(path) != before:  # the write pass would not read what was checked
        report(RowError(0, "The file changed while it was being checked; nothing was written."))
        result.failed = result.rows
        return result
    _create_write(path, bad, roles, result, continue_on_error, workers, actor_id, report, progress)
    return result


def _create_check(
    path: str | Path, roles: set[str], result: BulkResult, report: Reporter, progress: ProgressFactory
) -> set[int]:
    """The check pass: report every bad row, return their line numbers."""
    bad: set[int] = set()
    seen_usernames: dict[str, int] = {}  # lower-cased username -> first line
    seen_emails: dict[str, int] = {}
    pending: list[NewUser] = []  # rows waiting for the database check
    errors: list[RowError] = []

    def flush() -> None:
        if pending:
            usernames = {row.username.lower() for row in pending}
            emails = {row.email for row in pending}
            taken = (
                User.objects.annotate(username_lower=Lower("username"))
                .filter(Q(username_lower__in=usernames) | Q(email__in=emails))
                .values_list("username_lower", "email")
            )
            taken_usernames, taken_emails = set(), set()
            for username, email in taken:
                taken_usernames.add(username)
                taken_emails.add(email)
            for row in pending:
                if row.username.lower() in taken_usernames:
                    errors.append(RowError(row.line, "A user with that username already exists.", "username"))
                    bad.add(row.line)
                if row.email in taken_emails:
                    errors.append(RowError(row.line, "A user with that email already exists.", "email"))
                    bad.add(row.line)
            pending.clear()
        for error in sorted(errors, key=lambda e: e.line):
            report(error)
        errors.clear()

    for line, data in rows_checked(path, result, progress, errors, flush=flush, batch_size=BATCH_SIZE):
        if isinstance(data, BadJSON):
            bad.add(line)
            continue
        row, row_errors = new_user_clean(data, line=line, known_roles=roles)
        # Duplicates are told for every row whose username / email is itself valid,
        # even if another field is not: the file has to be fixed either way.
        for field, seen, key in (
            ("username", seen_usernames, _valid_key(data, "username", row_errors, str.lower)),
            ("email", seen_emails, _valid_key(data, "email", row_errors, normalize_email)),
        ):
            if key is None:
                continue
            if key in seen:
                row_errors.append(RowError(line, f"Duplicate of line {seen[key]}.", field))
            else:
                seen[key] = line
        if row is not None and not row_errors:
            pending.append(row)
        if row_errors:
            errors.extend(row_errors)
            bad.add(line)
    result.failed = len(bad)
    return bad


def _valid_key(data: Any, field: str, errors: list[RowError], normalize: Callable[[str], str]) -> str | None:
    """The row's normalised `field` when it has no error of its own, for duplicate detection."""
    value = data.get(field) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value.strip() or any(e.field == field for e in errors):
        return None
    return normalize(value.strip())


def _good_rows(path: str | Path, bad: set[int]) -> Iterator[NewUser]:
    for line, data in json_rows(path):
        if line not in bad and not isinstance(data, BadJSON):
            yield checked_row(data, line)


def _fingerprint(path: str | Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def _create_write(
    path: str | Path,
    bad: set[int],
    roles: set[str],
    result: BulkResult,
    continue_on_error: bool,
    workers: int,
    actor_id: Id | None,
    report: Reporter,
    progress: ProgressFactory,
) -> None:
    """The write pass: batches of inserts, hashing the next batch while this one is written."""
    group_ids = dict(Group.objects.filter(name__in=roles).values_list("name", "id"))
    bar = progress("Creating", result.rows - result.failed)
    atomic: AbstractContextManager[Any] = nullcontext() if continue_on_error else transaction.atomic()

    def write(rows: list[NewUser], hashes: Callable[[], list[str]]) -> None:
        plain = iter(hashes())
        encoded = [row.password_hash if row.password_hash is not None else next(plain) for row in rows]
        if continue_on_error:
            _insert_or_split(rows, encoded, group_ids, actor_id, result, report)
        else:
            _insert(rows, encoded, group_ids, actor_id)
            result.done += len(rows)
        bar.update(len(rows))

    try:
        with PasswordHashing(workers) as hashing, atomic:
            previous: tuple[list[NewUser], Callable[[], list[str]]] | None = None
            for batch in batched(_good_rows(path, bad), BATCH_SIZE):
                job = hashing.submit([row.password for row in batch if row.password is not None])
                if previous is not None:
                    write(*previous)
                previous = (batch, job)
            if previous is not None:
                write(*previous)
    except IntegrityError as exc:  # only without continue_on_error: everything was rolled back
        result.failed, result.done = result.rows, 0
        report(RowError(0, f"Nothing was written: a row clashes with an account created meanwhile ({exc})."))
    finally:
        bar.close()


def _insert_or_split(
    rows: list[NewUser],
    encoded: list[str],
    group_ids: dict[str, int],
    actor_id: Id | None,
    result: BulkResult,
    report: Reporter,
) -> None:
    """A batch in its own transaction; if it clashes (a race), row by row to find the culprits."""
    try:
        with transaction.atomic():
            _insert(rows, encoded, group_ids, actor_id)
        result.done += len(rows)
        return
    except IntegrityError:
        pass
    for row, password in zip(rows, encoded, strict=True):
        try:
            with transaction.atomic():
                _insert([row], [password], group_ids, actor_id)
            result.done += 1
        except IntegrityError:
            result.failed += 1
            report(RowError(row.line, "A user with that username or email already exists.", "username"))


def _insert(rows: list[NewUser], encoded: list[str], group_ids: dict[str, int], actor_id: Id | None) -> None:
    """Users, their roles, their `new_user` events and audit rows: four INSERTs per batch.

    The rows `user_create` writes, built by the same functions
    (`new_user_fields`, `new_user_payload`, `event_fields`, `audit_fields`),
    as column values rather than model instances (an instance costs about as
    much as its share of the INSERT).
    """
    users: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    audit: list[dict[str, Any]] = []
    for row, password in zip(rows, encoded, strict=True):
        user = new_user_fields(
            username=row.username,
            email=row.email,
            full_name=row.full_name,
            password_hash=password,
            roles=row.roles,
            email_verified=row.email_verified,
        )
        users.append(user)
        roles.extend({"user_id": user["id"], "group_id": group_ids[name]} for name in row.roles)
        events.append(event_fields(name="new_user", payload=new_user_payload(user)))
        audit.append(
            audit_fields(
                AuditKind.REGISTERED, user_id=user["id"], actor_id=actor_id, source="bulk_create_users"
            )
        )
    insert_rows(User, users)
    insert_rows(User.groups.through, roles)
    insert_rows(OutboxEvent, events)
    insert_rows(AuditEvent, audit)
    outbox_relay_after_commit()
