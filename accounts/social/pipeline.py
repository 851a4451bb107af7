"""Our steps of social-core's pipeline (the list is `SOCIAL_AUTH_PIPELINE` in settings).

social-core's own `get_username` / `create_user` are not used: they write the
user row directly (no event, no audit, no roles) and clean usernames with
Django's rules, which allow characters ours do not.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models.functions import Lower

from core.errors import ServiceError, Unavailable

from ..models import User, normalize_email
from ..services import user_create

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_.+-]+")
_MAX = 150
_SUFFIX = 7  # "-" and 6 hex digits


class EmailInUse(ServiceError):
    """400; `user_id` and `reason` are for the audit row (the owner's log shows the attempt)."""

    code = "email_in_use"

    def __init__(self, detail: str, *, owner_id: Any) -> None:
        super().__init__(detail)
        self.user_id, self.reason = owner_id, "email_in_use"


def username_base(*candidates: Any) -> str:
    """The first candidate that is something within the username rules (ASCII letters, digits, . + - _)."""
    for candidate in candidates:
        if not isinstance(candidate, str | int) or isinstance(candidate, bool):
            continue
        ascii_text = unicodedata.normalize("NFKD", str(candidate)).encode("ascii", "ignore").decode()
        cleaned = _NOT_ALLOWED.sub("", ascii_text.replace(" ", "_")).strip("._-+")
        if cleaned:
            return cleaned[: _MAX - _SUFFIX]
    return "user"


def _taken(username: str) -> bool:
    return User.objects.alias(u=Lower("username")).filter(u=username.lower()).exists()


def create_user(
    backend: Any, details: dict[str, Any], uid: str, user: User | None = None, **kwargs: Any
) -> Any:
    """A new account for a new identity, unless one is already known (or linking).

    Never matched to an account by email: a provider that does not verify
    addresses would hand that account to whoever typed the address. A profile
    carrying the email of an existing account is refused instead (log in to it
    and link the provider from there).
    """
    if user is not None:
        return {"is_new": False}
    email = normalize_email(details.get("email") or "")
    owner = User.objects.filter(email=email).values_list("id", flat=True).first() if email else None
    if owner is not None:
        raise EmailInUse(
            "An account with this email address already exists. Log in to it and link the provider there.",
            owner_id=owner,
        )
    base = username_base(details.get("username"), f"{backend.name.split('-')[0]}{uid}")
    full_name = (
        details.get("fullname")
        or " ".join(part for part in (details.get("first_name"), details.get("last_name")) if part)
    )[:255]
    username = base
    for _attempt in range(5):
        if not _taken(username):
            try:
                created = user_create(
                    username=username,
                    email=email,
                    password=None,
                    full_name=full_name,
                    validate_password=False,
                    # The provider vouches for the address it gives: Yandex ID's `default_email`
                    # is the account's Yandex Mail address or one the user confirmed in Yandex ID
                    # (adding an address there takes a code sent to it). Telegram gives none.
                    email_verified=bool(email),
                )
            except ValidationError as exc:  # a race for the name: another suffix
                if "username" not in getattr(exc, "message_dict", {}):
                    raise
            else:
                return {"is_new": True, "user": created}
        username = f"{base}-{secrets.token_hex(3)}"
    raise Unavailable("Could not choose a username; try again.", code="username_unavailable", retry_after=1)


class ProviderAlreadyLinked(ServiceError):
    code = "provider_already_linked"


def one_per_provider(backend: Any, user: User | None = None, social: Any = None, **kwargs: Any) -> None:
    """An account links at most one identity of each provider (unlinking names the provider)."""
    if user is not None and social is None:
        storage = backend.strategy.storage.user
        if storage.objects.filter(user_id=user.pk, provider=backend.name).exists():
            raise ProviderAlreadyLinked(
                "Another account of this provider is already linked to yours; unlink it first."
            )


def remember_outcome(user: User | None = None, new_association: bool = False, **kwargs: Any) -> None:
    """Tell the caller whether this run linked the identity (the pipeline returns the user only)."""
    if user is not None:
        user.social_new_association = bool(new_association)  # type: ignore[attr-defined]
