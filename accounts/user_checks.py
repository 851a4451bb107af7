"""A new account's fields: their checks and their normal form, before anything is written.

`register_user` checks each field as it is typed (`username_problems`,
`email_problems`, `full_name_problems`); `bulk_create_users` checks whole rows
(`new_user_clean`), reporting every problem of a row by its line. The rules
are the model's validators and Django's password validators, as `user_create`
applies them; uniqueness against the database is checked by the callers (one
query per batch for bulk create).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import password_validation
from django.contrib.auth.hashers import get_hashers_by_algorithm, identify_hasher, is_password_usable
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, MaxLengthValidator

from .bulk_rows import RowError
from .models import ROLE_USER, User, UsernameValidator, normalize_email

CREATE_FIELDS = ("username", "email", "full_name", "role", "password", "password_hash", "email_verified")

# What passlib's bcrypt (the earlier services) stored: `$2b$12$` + 22 salt + 31 hash characters.
_BCRYPT = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}\Z")


def password_validate(
    password: str, *, username: str, email: str, full_name: str = "", field: str = "password"
) -> None:
    """Django's validators (length, common, numeric, similarity); errors go to `field`."""
    probe = User(username=username, email=email, full_name=full_name)
    try:
        password_validation.validate_password(password, probe)
    except ValidationError as exc:
        raise ValidationError({field: list(exc.messages)}) from None


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
    # Users migrated from the earlier services, whose address was verified there, are not asked again.
    email_verified: bool = False


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
    email_verified = data.get("email_verified", False)
    if not isinstance(email_verified, bool):
        errors.append(RowError(line, "Must be true or false.", "email_verified"))
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
            password_validate(password, username=username or "", email=email or "", full_name=full_name)
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
    return NewUser(
        line, username, email, full_name, roles, password, password_hash, email_verified is True
    ), []


def checked_row(data: dict[str, Any], line: int) -> NewUser:
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
        email_verified=data.get("email_verified") is True,
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
