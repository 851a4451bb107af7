"""`bulk_delete_users`: delete the accounts a file names, through the API's own services.

Check pass first (shape, not found, the same user twice), one lookup query
per `BATCH_SIZE` entries; then each user through `user_soft_delete` or
`user_hard_delete`, so sessions, caches, events and audit are the API's, and
so is a refusal: the last active administrator is not deleted (`last_admin`),
reported on its row like a user not found.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Lower

from core.errors import NotFound, ServiceError
from core.ids import Id

from ..bulk_rows import (
    BadJSON,
    BulkResult,
    ProgressFactory,
    Reporter,
    RowError,
    ignore,
    no_progress,
    rows_checked,
)
from ..models import User, normalize_email
from .users import user_hard_delete, user_soft_delete

#: Entries per lookup query.
BATCH_SIZE = 1000
DELETE_FIELDS = ("username", "email", "id")


class _Abort(Exception):
    """Roll an all-or-nothing bulk delete back (a user vanished between the passes)."""


def _delete_target(data: Any, line: int) -> tuple[str | None, str, list[RowError]]:
    """(`username`/`email`/`id`, or None for "any of them", value, errors) of one entry."""
    if isinstance(data, str):
        value = data.strip()
        return None, value, [] if value else [RowError(line, "An empty name.")]
    if isinstance(data, dict):
        keys = [key for key in data if key in DELETE_FIELDS]
        unknown = [str(key) for key in data if key not in DELETE_FIELDS]
        errors = [
            RowError(line, f"Unknown field (expected one of {', '.join(DELETE_FIELDS)}).", key)
            for key in unknown
        ]
        if len(keys) != 1:
            errors.append(RowError(line, f"Give exactly one of {', '.join(DELETE_FIELDS)}."))
            return None, "", errors
        value = data[keys[0]]
        if not isinstance(value, str) or not value.strip():
            errors.append(RowError(line, "Must be a non-empty string.", keys[0]))
            return None, "", errors
        return keys[0], value.strip(), errors
    return (
        None,
        "",
        [RowError(line, "Each entry must be a username, an email, an id, or an object with one of them.")],
    )


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def users_bulk_delete(
    *,
    path: str | Path,
    hard: bool = False,
    continue_on_error: bool = False,
    dry_run: bool = False,
    actor_id: Id | None = None,
    report: Reporter = ignore,
    progress: ProgressFactory = no_progress,
) -> BulkResult:
    """Delete the users a file names, through `user_soft_delete` or `user_hard_delete`.

    Check pass first (shape, not found, the same user twice), one lookup query
    per `BATCH_SIZE` entries; then each user through the same service as the
    API, so sessions, caches, events and audit are the API's. A soft delete of
    an account already deleted is left alone and counted as unchanged. A row
    the service refuses (`last_admin`) is reported with its line; without
    `continue_on_error` nothing is then deleted.
    """
    result = BulkResult(dry_run=dry_run)
    targets = _delete_check(path, hard, result, report, progress)
    if dry_run or not targets or (result.failed and not continue_on_error):
        return result
    bar = progress("Removing" if hard else "Deleting", len(targets))
    delete = user_hard_delete if hard else user_soft_delete
    try:
        if continue_on_error:
            for user_id, line in targets.items():
                try:
                    delete(user_id=user_id, actor_id=actor_id)
                    result.done += 1
                except (User.DoesNotExist, NotFound):
                    result.failed += 1
                    report(RowError(line, "Not found (deleted meanwhile)."))
                except ServiceError as exc:  # refused, and rolled back by the service
                    result.failed += 1
                    report(RowError(line, f"Not deleted: {exc.detail} ({exc.code})"))
                bar.update()
        else:
            with transaction.atomic():
                for user_id, line in targets.items():
                    try:
                        delete(user_id=user_id, actor_id=actor_id)
                    except (User.DoesNotExist, NotFound):
                        report(RowError(line, "Not found (deleted meanwhile); nothing was deleted."))
                        raise _Abort from None
                    except ServiceError as exc:
                        report(RowError(line, f"{exc.detail} ({exc.code}); nothing was deleted."))
                        raise _Abort from None
                    result.done += 1
                    bar.update()
    except _Abort:
        result.failed += 1
        result.done = 0
    finally:
        bar.close()
    return result


def _delete_check(
    path: str | Path, hard: bool, result: BulkResult, report: Reporter, progress: ProgressFactory
) -> dict[uuid.UUID, int]:
    """The check pass of a bulk delete: the users to delete (id -> line), in file order."""
    targets: dict[uuid.UUID, int] = {}
    lines_of_user: dict[uuid.UUID, int] = {}  # every user named so far, also those left alone
    pending: list[tuple[int, str | None, str]] = []
    errors: list[RowError] = []
    bad: set[int] = set()

    def flush() -> None:
        usernames = {
            value.lower() for _, kind, value in pending if kind in (None, "username") and "@" not in value
        }
        emails = {
            normalize_email(value) for _, kind, value in pending if kind in (None, "email") and "@" in value
        }
        ids = {uid for _, kind, value in pending if kind in (None, "id") and (uid := _as_uuid(value))}
        by_username: dict[str, tuple[uuid.UUID, Any]] = {}
        by_email: dict[str, tuple[uuid.UUID, Any]] = {}
        by_id: dict[uuid.UUID, tuple[uuid.UUID, Any]] = {}
        if pending:
            found = (
                User.objects.annotate(username_lower=Lower("username"))
                .filter(Q(username_lower__in=usernames) | Q(email__in=emails) | Q(id__in=ids))
                .values_list("id", "username_lower", "email", "deleted_at")
            )
            for user_id, username, email, deleted_at in found:
                by_username[username] = by_email[email] = by_id[user_id] = (user_id, deleted_at)
        for line, kind, value in pending:
            match: tuple[uuid.UUID, Any] | None = None
            if kind in (None, "email") and "@" in value:
                match = by_email.get(normalize_email(value))
            elif kind in (None, "username"):
                match = by_username.get(value.lower())
            if match is None and kind in (None, "id") and (uid := _as_uuid(value)):
                match = by_id.get(uid)
            if match is None:
                errors.append(RowError(line, f"Not found: {value}."))
                continue
            user_id, deleted_at = match
            if user_id in lines_of_user:
                errors.append(RowError(line, f"Duplicate of line {lines_of_user[user_id]} (the same user)."))
                continue
            lines_of_user[user_id] = line
            if deleted_at is not None and not hard:
                result.unchanged += 1
            else:
                targets[user_id] = line
        pending.clear()
        for error in sorted(errors, key=lambda e: e.line):
            report(error)
            bad.add(error.line)
        errors.clear()

    for line, data in rows_checked(path, result, progress, errors, flush=flush, batch_size=BATCH_SIZE):
        if not isinstance(data, BadJSON):
            kind, value, row_errors = _delete_target(data, line)
            if row_errors:
                errors.extend(row_errors)
            else:
                pending.append((line, kind, value))
    result.failed = len(bad)
    return targets
