"""Account operations for the command line: find, hard delete, bulk create and bulk delete.

The `manage.py` commands (`register_user`, `delete_user`, `bulk_create_users`,
`bulk_delete_users`, ...) call these, and these call the services the API
uses (`user_create`, `user_soft_delete`, `sessions_revoke_all`, ...), so an
account changed from the command line loses its sessions and cached state
exactly as through the API.

Bulk create is the one path that does not loop over `user_create`: that is a
transaction and about ten queries per user. It reads the file twice instead,
streaming both times, so 100,000 rows never sit in memory together:

1. check every row (fields, roles, passwords, duplicates in the file, and, one
   query per `BATCH_SIZE` rows, clashes with the database), reporting each
   bad row by line number;
2. only when that found nothing wrong (or `continue_on_error`), write in
   batches: users, their roles, their `new_user` events and audit rows with
   one multi-row INSERT (COPY on PostgreSQL) each: the rows and payloads
   `user_create` makes, and the events in the transaction of their users, as
   the outbox requires. Plaintext passwords are hashed on every core.

Without `continue_on_error` the write pass is one transaction, so even an
account created by someone else between the two passes cannot leave half an
import behind.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from itertools import islice
from multiprocessing.pool import Pool
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TextIO

from django.conf import settings
from django.contrib.auth.hashers import (
    get_hashers_by_algorithm,
    identify_hasher,
    is_password_usable,
    make_password,
)
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, MaxLengthValidator
from django.db import IntegrityError, connection, transaction
from django.db.models import (
    BooleanField,
    CharField,
    DateTimeField,
    Field,
    GenericIPAddressField,
    IntegerField,
    JSONField,
    Model,
    Q,
    TextField,
    UUIDField,
)
from django.db.models.fields import AutoFieldMixin
from django.db.models.functions import Lower
from django.utils import timezone

from config.errors import NotFound
from notifications.models import OutboxEvent
from notifications.services import event_emit

from .. import cache as auth_cache
from ..models import ROLE_ADMIN, ROLE_USER, AuditEvent, User, UsernameValidator, normalize_email
from .audit import Kind, audit_record
from .sessions import sessions_revoke_all
from .users import user_soft_delete, validate_password_for

#: Rows per uniqueness query, per insert batch and per hashing round.
BATCH_SIZE = 1000
#: Characters read from a file at a time, and the most one row of a JSON array may take.
CHUNK_CHARS = 1 << 16
MAX_ROW_CHARS = 1 << 20

CREATE_FIELDS = ("username", "email", "full_name", "role", "password", "password_hash")
DELETE_FIELDS = ("username", "email", "id")

# What passlib's bcrypt (the earlier services) stored: `$2b$12$` + 22 salt + 31 hash characters.
_BCRYPT = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}\Z")
_NOT_SPACE = re.compile(r"[^ \t\r\n]")
_NUMBER_TAIL = re.compile(r"[0-9.eE+-]*")
_DECODER = json.JSONDecoder()


# --- reporting -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem with one row; `line` 0 means the whole input (or a single command-line user)."""

    line: int
    message: str
    field: str | None = None

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}" if self.field else self.message
        return f"line {self.line}: {text}" if self.line else text


@dataclass
class BulkResult:
    """What a bulk command did, for its summary and its exit status."""

    rows: int = 0  # rows read (a JSON error that stops the reading counts as one)
    failed: int = 0  # rows not applied because something was wrong with them
    done: int = 0  # users created or deleted
    unchanged: int = 0  # rows that needed nothing (a soft delete of a deleted user)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.failed == 0


class Progress(Protocol):
    """The part of `tqdm` the services use; commands pass tqdm, tests and scripts nothing."""

    def update(self, n: int = 1) -> Any: ...

    def close(self) -> Any: ...


ProgressFactory = Callable[[str, "int | None"], Progress]
Reporter = Callable[[RowError], None]


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def no_progress(description: str, total: int | None) -> Progress:
    return _NoProgress()


def _ignore(error: RowError) -> None:
    pass


# --- reading JSON or JSON Lines as a stream ------------------------------------------------


@dataclass(frozen=True, slots=True)
class BadJSON:
    """A row that is not JSON. `fatal`: the rest of the file cannot be read either."""

    message: str
    fatal: bool = False


class _Fatal(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message, self.line = message, line


class _Scanner:
    """A window on a text stream: whitespace skipping, one JSON value at a time, line counting.

    Holds the unread rest of the current chunk plus, while a value spans chunks,
    the chunks it needs: memory stays at a few chunks whatever the file size.
    """

    def __init__(self, stream: TextIO, chunk_chars: int) -> None:
        self.stream, self.chunk_chars = stream, chunk_chars
        self.buf, self.pos, self.line, self.eof = "", 0, 1, False

    def fill(self) -> bool:
        """Append the next chunk (dropping what was consumed); False at the end of the file."""
        if self.eof:
            return False
        part = self.stream.read(self.chunk_chars)
        if not part:
            self.eof = True
            return False
        self.buf, self.pos = self.buf[self.pos :] + part, 0
        return True

    def peek(self) -> str | None:
        """Skip whitespace; the next character, or None at the end of the file."""
        while True:
            match = _NOT_SPACE.search(self.buf, self.pos)
            if match:
                self.line += self.buf.count("\n", self.pos, match.start())
                self.pos = match.start()
                return self.buf[self.pos]
            self.line += self.buf.count("\n", self.pos)
            self.pos = len(self.buf)
            if not self.fill():
                return None

    def value(self) -> Any:
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # Maybe only cut off by the chunk: read on, up to the size no row reaches.
                if len(self.buf) - self.pos <= MAX_ROW_CHARS and self.fill():
                    continue
                line = self.line + self.buf.count("\n", self.pos, exc.pos)
                raise _Fatal(f"Invalid JSON: {exc.msg}.", line) from None
            if (
                isinstance(obj, int | float)
                and not isinstance(obj, bool)
                and _NUMBER_TAIL.fullmatch(self.buf, end)
                and self.fill()
            ):
                continue  # "12" or "-5." at the end of a chunk may go on in the next one
            self.line += self.buf.count("\n", self.pos, end)
            self.pos = end
            return obj


def json_rows(path: str | Path, *, chunk_chars: int = CHUNK_CHARS) -> Iterator[tuple[int, Any]]:
    """The rows of a JSON array or a JSON Lines file, each with the line it starts on.

    Streams either form (no `json.load` of the whole file), so memory does not
    grow with the file. A JSON Lines row that is not JSON comes as a `BadJSON`
    and reading goes on; a JSON array that breaks cannot be resynchronised, so
    a fatal `BadJSON` ends it.
    """
    with open(path, encoding="utf-8-sig") as stream:
        try:
            scanner = _Scanner(stream, chunk_chars)
            if scanner.peek() == "[":
                yield from _array_rows(scanner)
            else:
                stream.seek(0)
                yield from _line_rows(stream)
        except UnicodeDecodeError as exc:
            yield 0, BadJSON(f"The file is not UTF-8 text ({exc.reason}).", fatal=True)


def _array_rows(scanner: _Scanner) -> Iterator[tuple[int, Any]]:
    scanner.pos += 1  # the "["
    try:
        char = scanner.peek()
        if char == "]":
            scanner.pos += 1
        else:
            while True:
                if char is None:
                    raise _Fatal("Unexpected end of file: the array is not closed with ].", scanner.line)
                line = scanner.line
                yield line, scanner.value()
                char = scanner.peek()
                if char == ",":
                    scanner.pos += 1
                    char = scanner.peek()
                elif char == "]":
                    scanner.pos += 1
                    break
                elif char is not None:
                    raise _Fatal("Invalid JSON: expected , or ] after a row.", scanner.line)
        if scanner.peek() is not None:
            raise _Fatal("Invalid JSON: unexpected data after the closing ].", scanner.line)
    except _Fatal as exc:
        yield exc.line, BadJSON(exc.message, fatal=True)


def _line_rows(stream: TextIO) -> Iterator[tuple[int, Any]]:
    for number, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        try:
            yield number, json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, BadJSON(f"Invalid JSON: {exc.msg} (column {exc.colno}).")


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


# --- finding and deleting one user ---------------------------------------------------------


@transaction.atomic
def user_hard_delete(*, user_id: Any, actor_id: Any = None) -> None:
    """Remove an account and everything that hangs on it, for good.

    Its sessions are revoked first so that the cache records them as revoked
    (a token in flight is refused at once, even before the cached user entry
    is dropped); then the row goes, `user_deleted` (`hard: true`) is emitted and
    the cached user is removed after commit.
    """
    user = User.objects.select_for_update().filter(id=user_id).first()
    if user is None:
        raise NotFound("User not found.")
    sessions_revoke_all(user_id=user.id, reason="deleted", actor_id=actor_id)
    user.delete()
    event_emit(name="user_deleted", payload={"user_id": str(user_id), "hard": True})
    # The row is gone, so the audit entry names the id in its detail (as the purge does).
    audit_record(Kind.PURGED, actor_id=actor_id, detail_user_id=str(user_id), hard=True)
    auth_cache.refresh_user(user_id)


# --- one new user's fields -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewUser:
    """A checked row of `bulk_create_users`, normalised (lower-cased email, `bcrypt$` prefix, roles)."""

    line: int
    username: str
    email: str
    full_name: str
    roles: tuple[str, ...]
    password: str | None
    password_hash: str | None


_USERNAME_VALIDATORS = (UsernameValidator(), MaxLengthValidator(150))
_EMAIL_VALIDATORS = (EmailValidator(), MaxLengthValidator(254))
_FULL_NAME_VALIDATORS = (MaxLengthValidator(255),)
_PASSWORD_VALIDATORS = (MaxLengthValidator(128),)
HASH_FORMATS = "a Django password hash, or a bcrypt hash ($2a$, $2b$, $2y$) as the earlier services stored"


def _messages(value: Any, validators: Iterable[Callable[[Any], Any]]) -> list[str]:
    messages: list[str] = []
    for validator in validators:
        if isinstance(validator, MaxLengthValidator) and len(value) <= validator.limit_value:
            continue  # the common case, without building the validator's message machinery
        try:
            validator(value)
        except ValidationError as exc:
            messages.extend(exc.messages)
    return messages


def password_hash_normalize(value: str) -> str:
    """A stored hash in the form Django checks: passlib's `$2b$...` gets Django's `bcrypt$` prefix.

    Django's own formats are kept as they are (the first login re-hashes them
    with the preferred hasher). Raises ValueError for anything Django could not
    check a password against: an unknown or unconfigured algorithm, a missing
    hasher library, a malformed hash.
    """
    encoded = value.strip()
    if _BCRYPT.match(encoded):
        # The form is exact already (the regex); only the hasher must be configured.
        if "bcrypt" not in get_hashers_by_algorithm():
            raise ValueError("the bcrypt hasher is not configured")
        return f"bcrypt${encoded}"
    if not is_password_usable(encoded):
        raise ValueError("not a usable password hash")
    try:
        hasher = identify_hasher(encoded)
        hasher.decode(encoded)
    except (ValueError, TypeError, IndexError, AssertionError, NotImplementedError) as exc:
        raise ValueError(str(exc)) from None
    if hasher.algorithm in {"bcrypt", "bcrypt_sha256"} and not _BCRYPT.match(encoded.split("$", 1)[1]):
        raise ValueError("malformed bcrypt hash")
    return encoded


def _string(
    data: dict[str, Any], field: str, line: int, errors: list[RowError], *, strip: bool = True
) -> Any:
    """The field as a string; None (with an error) when it is not one; absent or null stays None."""
    value = data.get(field)
    if value is None or isinstance(value, str):
        return value.strip() if strip and value is not None else value
    errors.append(RowError(line, "Must be a string.", field))
    return None


def _roles(value: Any, line: int, known_roles: Collection[str], errors: list[RowError]) -> tuple[str, ...]:
    """Every account has the `user` role; `role` (a name or a list of names) adds to it."""
    if value is None:
        given: list[Any] = []
    elif isinstance(value, str):
        given = [value.strip()]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        given = [item.strip() for item in value]
    else:
        errors.append(RowError(line, "Must be a role name or a list of role names.", "role"))
        return ()
    unknown = sorted({name for name in given if name not in known_roles})
    errors.extend(RowError(line, f"Unknown role: {name}.", "role") for name in unknown)
    return tuple(sorted({ROLE_USER, *given}))


def new_user_clean(
    data: Any, *, line: int, known_roles: Collection[str]
) -> tuple[NewUser | None, list[RowError]]:
    """Check and normalise one new user's fields; every problem found, not just the first.

    Uniqueness is not checked here: the caller does it in batches.
    """
    if not isinstance(data, dict):
        return None, [RowError(line, "Each row must be a JSON object.")]
    errors: list[RowError] = [
        RowError(line, f"Unknown field (expected {', '.join(CREATE_FIELDS)}).", str(key))
        for key in data
        if key not in CREATE_FIELDS
    ]
    username = _string(data, "username", line, errors)
    email = _string(data, "email", line, errors)
    full_name = _string(data, "full_name", line, errors) or ""
    password = _string(data, "password", line, errors, strip=False)
    password_hash = _string(data, "password_hash", line, errors)
    roles = _roles(data.get("role"), line, known_roles, errors)
    if email:
        email = normalize_email(email)
    for field, value in (("username", username), ("email", email)):
        if data.get(field) is None:
            errors.append(RowError(line, "This field is required.", field))
        elif isinstance(data[field], str) and not value:
            errors.append(RowError(line, "This field may not be blank.", field))
    if data.get("password") is not None and data.get("password_hash") is not None:
        errors.append(RowError(line, "Give either password or password_hash, not both.", "password"))
    elif data.get("password") is None and data.get("password_hash") is None:
        errors.append(RowError(line, "This field is required (or give password_hash).", "password"))

    for field, value, validators in (
        ("username", username, _USERNAME_VALIDATORS),
        ("email", email, _EMAIL_VALIDATORS),
        ("full_name", full_name, _FULL_NAME_VALIDATORS),
        ("password", password, _PASSWORD_VALIDATORS),
    ):
        if value:
            errors.extend(RowError(line, message, field) for message in _messages(value, validators))
    if password is not None and not any(e.field == "password" for e in errors):
        try:
            validate_password_for(password, username=username or "", email=email or "", full_name=full_name)
        except ValidationError as exc:
            errors.extend(RowError(line, message, "password") for message in exc.messages)
    if password_hash is not None:
        try:
            password_hash = password_hash_normalize(password_hash)
        except ValueError:
            errors.append(
                RowError(
                    line, f"Not a password hash this service can check: use {HASH_FORMATS}.", "password_hash"
                )
            )

    if errors or not username or not email:
        return None, errors
    return NewUser(line, username, email, full_name, roles, password, password_hash), []


def _checked_row(data: dict[str, Any], line: int) -> NewUser:
    """A row the check pass accepted, normalised as `new_user_clean` does, without checking it again.

    The write pass uses it so that the validators (the costly part) run once per row.
    """
    role = data.get("role")
    given = [] if role is None else [role] if isinstance(role, str) else role
    password_hash = data.get("password_hash")
    if password_hash is not None:
        password_hash = password_hash.strip()
        password_hash = f"bcrypt${password_hash}" if _BCRYPT.match(password_hash) else password_hash
    return NewUser(
        line=line,
        username=data["username"].strip(),
        email=normalize_email(data["email"]),
        full_name=(data.get("full_name") or "").strip(),
        roles=tuple(sorted({ROLE_USER, *(name.strip() for name in given)})),
        password=data.get("password"),
        password_hash=password_hash,
    )


def username_problems(username: str) -> list[str]:
    """Why `username` cannot be a new account's (format, length, taken in any case); [] if it can."""
    if not username:
        return ["This field may not be blank."]
    problems = _messages(username, _USERNAME_VALIDATORS)
    if not problems and User.objects.by_login(username).exists():
        problems.append("A user with that username already exists.")
    return problems


def email_problems(email: str) -> list[str]:
    """Why `email` (normalised first) cannot be a new account's; [] if it can."""
    email = normalize_email(email)
    if not email:
        return ["This field may not be blank."]
    problems = _messages(email, _EMAIL_VALIDATORS)
    if not problems and User.objects.filter(email=email).exists():
        problems.append("A user with that email already exists.")
    return problems


def full_name_problems(full_name: str) -> list[str]:
    return _messages(full_name, _FULL_NAME_VALIDATORS)


def known_roles() -> set[str]:
    """Every role name (Django group); a handful, read once per command."""
    return set(Group.objects.values_list("name", flat=True))


# --- hashing passwords on every core ---------------------------------------------------------


def _pool_context() -> multiprocessing.context.BaseContext:
    """`fork` on Linux: workers start in milliseconds and inherit the configured hashers.

    They only hash (never touch the inherited database or cache connections)
    and leave with `os._exit`, so nothing of the parent's is closed behind its
    back. Elsewhere `spawn`, with `django.setup` as the initializer.
    """
    if sys.platform == "linux":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class PasswordHashing(AbstractContextManager["PasswordHashing"]):
    """`make_password` for batches of passwords, here or in `workers` processes.

    bcrypt costs ~250 ms a password and holds the GIL for most of it, so
    threads do not help; processes do. The pool starts on the first batch
    that has plaintext passwords: an import of hashes never pays for it.
    `submit` returns at once; the hashes are collected by calling its result,
    so the next batch is hashed while the previous one is inserted.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool: Pool | None = None

    def _get_pool(self) -> Pool:
        if self._pool is None:
            context = _pool_context()
            if context.get_start_method() == "fork":
                self._pool = context.Pool(self.workers)
            else:
                import django

                self._pool = context.Pool(self.workers, initializer=django.setup)
        return self._pool

    def submit(self, passwords: list[str]) -> Callable[[], list[str]]:
        if not passwords:
            return list
        if self.workers == 1:
            return lambda: [make_password(password) for password in passwords]
        pending = self._get_pool().map_async(
            # Small chunks: a worker slowed by other load leaves little of the batch to wait for.
            make_password,
            passwords,
            chunksize=max(1, len(passwords) // (self.workers * 16)),
        )
        return lambda: pending.get()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            if exc_type is None:
                self._pool.close()
            else:
                self._pool.terminate()
            self._pool.join()
            self._pool = None


# --- bulk create ---------------------------------------------------------------------------


def users_bulk_create(
    *,
    path: str | Path,
    continue_on_error: bool = False,
    dry_run: bool = False,
    workers: int = 1,
    actor_id: Any = None,
    report: Reporter = _ignore,
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
    since_flush = 0

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

    bar = progress("Checking", None)
    try:
        for line, data in json_rows(path):
            result.rows += 1
            bar.update()
            if isinstance(data, BadJSON):
                errors.append(RowError(line, data.message))
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
            since_flush += 1
            if since_flush >= BATCH_SIZE:
                flush()
                since_flush = 0
        flush()
    finally:
        bar.close()
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
            yield _checked_row(data, line)


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
    actor_id: Any,
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
            for batch in _batched(_good_rows(path, bad), BATCH_SIZE):
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


class _Abort(Exception):
    """Roll an all-or-nothing bulk delete back (a user vanished between the passes)."""


def _insert_or_split(
    rows: list[NewUser],
    encoded: list[str],
    group_ids: dict[str, int],
    actor_id: Any,
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


def _insert(rows: list[NewUser], encoded: list[str], group_ids: dict[str, int], actor_id: Any) -> None:
    """Users, their roles, their `new_user` events and audit rows: four INSERTs per batch.

    The rows `user_create` writes, built as plain column values (no model
    instances: those cost as much as the INSERT). The event payload is
    `event_emit`'s (`event_id` is the outbox row id, `occurred_at`) plus the
    fields of `new_user_payload` (a test holds the two equal).
    """
    users: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    audit: list[dict[str, Any]] = []
    topic = settings.KAFKA_TOPIC_DATA
    detail = {"source": "bulk_create_users"}
    for row, password in zip(rows, encoded, strict=True):
        user_id, event_id, now = uuid.uuid4(), uuid.uuid4(), timezone.now()
        users.append(
            {
                "id": user_id,
                "password": password,
                "last_login": None,
                "is_superuser": False,
                "username": row.username,
                "email": row.email,
                "full_name": row.full_name,
                "is_active": True,
                "is_staff": ROLE_ADMIN in row.roles,
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
            }
        )
        roles.extend({"user_id": user_id, "group_id": group_ids[name]} for name in row.roles)
        created = now.isoformat()
        payload = {
            "event_id": str(event_id),
            "occurred_at": created,
            "user_id": str(user_id),
            "username": row.username,
            "full_name": row.full_name,
            "email": row.email,
            "created_at": created,
        }
        events.append(
            {
                "id": event_id,
                "topic": topic,
                "key": "new_user",
                "payload": payload,
                "created_at": now,
                "published_at": None,
                "attempts": 0,
                "last_error": "",
            }
        )
        audit.append(
            {
                "user_id": user_id,
                "actor_id": actor_id,
                "kind": Kind.REGISTERED.value,
                "ip": None,
                "user_agent": "",
                "detail": detail,
                "created_at": now,
            }
        )
    _insert_many(User, users)
    _insert_many(User.groups.through, roles)
    _insert_many(OutboxEvent, events)
    _insert_many(AuditEvent, audit)
    _relay_after_commit()


def _publish_outbox() -> None:
    from notifications.tasks import publish_outbox

    publish_outbox.delay()


def _relay_after_commit() -> None:
    """As `event_emit` does: with a Celery broker, queue the outbox relay once per transaction."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # the embedded default: the periodic relay picks the rows up
    if not any(func is _publish_outbox for _, func, _ in transaction.get_connection().run_on_commit):
        transaction.on_commit(_publish_outbox)


def _column_adapter(field: Field[Any, Any]) -> Callable[[Any], Any]:
    """How Django turns a Python value into a database parameter for this column, minus the layers.

    The same `connection.ops` functions `get_db_prep_save` ends in; any other
    kind of field takes the full path.
    """
    ops = connection.ops
    target = field.target_field if field.is_relation else field  # type: ignore[attr-defined]
    if isinstance(target, UUIDField):
        if connection.features.has_native_uuid_field:
            return _same
        return lambda value: value.hex if value is not None else None
    if isinstance(field, DateTimeField):
        return ops.adapt_datetimefield_value
    if isinstance(field, JSONField):
        encoder = field.encoder
        return lambda value: ops.adapt_json_value(value, encoder)
    if isinstance(field, GenericIPAddressField):
        return ops.adapt_ipaddressfield_value
    if isinstance(target, CharField | TextField | IntegerField | BooleanField):
        return _same
    return lambda value: field.get_db_prep_save(value, connection)


def _same(value: Any) -> Any:
    return value


def _insert_many(model: type[Model], rows: list[dict[str, Any]]) -> None:
    """INSERT plain rows (keyed by column attname): COPY on PostgreSQL, `executemany` elsewhere.

    `bulk_create` spends ~20 µs of Python per value (three layers of
    `get_db_prep_save`, the SQL compiler; on PostgreSQL psycopg then escapes
    every element of its UNNEST arrays in Python): for the four tables of an
    import that made it 3.4x a bare `bulk_create` of the users alone. Values are
    adapted by the same `connection.ops` functions Django ends in. Every column
    but an automatic primary key must be given, so a field added to one of these
    models later fails here loudly, not silently. Database errors come out as
    Django's (`IntegrityError`), as from the ORM.
    """
    if not rows:
        return
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, AutoFieldMixin))]
    adapters = [_column_adapter(f) for f in fields]
    quote = connection.ops.quote_name
    table, columns = quote(model._meta.db_table), ", ".join(quote(str(f.column)) for f in fields)
    # A value repeated from the row before (a shared `detail`, a constant) is adapted once.
    last: list[Any] = [object()] * len(fields)
    adapted: list[Any] = [None] * len(fields)
    params = []
    for row in rows:
        for i, (field, adapt) in enumerate(zip(fields, adapters, strict=True)):
            value = row[field.attname]
            if value is not last[i]:
                last[i], adapted[i] = value, adapt(value)
        params.append(list(adapted))
    with connection.cursor() as cursor, connection.wrap_database_errors:
        if connection.vendor == "postgresql":
            # COPY: ~10x less client work than an UNNEST of arrays (psycopg escapes every
            # element of a text array in Python) or than row-by-row statements.
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for values in params:
                    copy.write_row(values)
        else:
            placeholders = ", ".join(["%s"] * len(fields))
            sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608
            cursor.executemany(sql, params)


# --- bulk delete ---------------------------------------------------------------------------


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
    actor_id: Any = None,
    report: Reporter = _ignore,
    progress: ProgressFactory = no_progress,
) -> BulkResult:
    """Delete the users a file names, through `user_soft_delete` or `user_hard_delete`.

    Check pass first (shape, not found, the same user twice), one lookup query
    per `BATCH_SIZE` entries; then each user through the same service as the
    API, so sessions, caches, events and audit are the API's. A soft delete of
    an account already deleted is left alone and counted as unchanged.
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
                bar.update()
        else:
            with transaction.atomic():
                for user_id, line in targets.items():
                    try:
                        delete(user_id=user_id, actor_id=actor_id)
                    except (User.DoesNotExist, NotFound):
                        report(RowError(line, "Not found (deleted meanwhile); nothing was deleted."))
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
    since_flush = 0

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

    bar = progress("Checking", None)
    try:
        for line, data in json_rows(path):
            result.rows += 1
            bar.update()
            if isinstance(data, BadJSON):
                errors.append(RowError(line, data.message))
            else:
                kind, value, row_errors = _delete_target(data, line)
                if row_errors:
                    errors.extend(row_errors)
                else:
                    pending.append((line, kind, value))
            since_flush += 1
            if since_flush >= BATCH_SIZE:
                flush()
                since_flush = 0
        flush()
    finally:
        bar.close()
    result.failed = len(bad)
    return targets
