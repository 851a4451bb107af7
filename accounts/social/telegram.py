"""Telegram Login Widget data: checked strictly, and each signed payload used once.

Written here rather than taken from social-core's `TelegramAuth.verify_data`,
which accepts an `auth_date` up to a day old, any date in the future, the same
payload again and again, and signs whatever fields arrive (so an extra field
breaks a genuine login, and every field is kept).
https://core.telegram.org/widgets/login#checking-authorization
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.cache import cache

from core.caching import FAILED, safe_call
from core.errors import AuthenticationFailed, Unavailable

#: The fields the widget signs; anything else is ignored, and not signed into the check.
WIDGET_FIELDS = ("id", "first_name", "last_name", "username", "photo_url", "auth_date")
#: How far ahead of our clock `auth_date` may be (clocks drift a little).
CLOCK_SKEW_SECONDS = 30
_HASH = re.compile(r"^[0-9a-f]{64}\Z")
_DIGITS = re.compile(r"^[0-9]{1,20}\Z")

INVALID = "The Telegram login data could not be verified."


class TelegramRefused(AuthenticationFailed):
    """401 with one message whatever the cause; `reason` is for the audit row only."""

    def __init__(self, reason: str) -> None:
        super().__init__(INVALID, code="telegram_auth_invalid")
        self.reason = reason


_refuse = TelegramRefused


def _text(value: Any) -> str | None:
    """The value as Telegram signed it, or None when it cannot be a widget value."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    # A line feed would let two different field sets give one data-check string.
    return None if "\n" in text else text


def telegram_verify(
    data: Mapping[str, Any], *, bot_token: str, max_age: int, now: float | None = None
) -> dict[str, str]:
    """The widget's signed fields, if the hash verifies and `auth_date` is fresh; else 401.

    HMAC-SHA256 over the sorted `key=value` lines, keyed with SHA-256 of the bot
    token, compared in constant time.
    """
    received = data.get("hash")
    if not isinstance(received, str) or not _HASH.match(received):
        raise _refuse("malformed_hash")
    fields: dict[str, str] = {}
    for name in WIDGET_FIELDS:
        value = data.get(name)
        if value is None or value == "":
            continue
        text = _text(value)
        if text is None:
            raise _refuse("malformed_field")
        fields[name] = text
    if not _DIGITS.match(fields.get("id", "")) or not _DIGITS.match(fields.get("auth_date", "")):
        raise _refuse("malformed_field")
    check = "\n".join(f"{name}={fields[name]}" for name in sorted(fields))
    secret = hashlib.sha256(bot_token.encode()).digest()
    expected = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, received):
        raise _refuse("bad_signature")
    now = time.time() if now is None else now
    auth_date = int(fields["auth_date"])
    if now - auth_date > max_age:
        raise _refuse("expired")
    if auth_date - now > CLOCK_SKEW_SECONDS:
        raise _refuse("future")
    return fields


def telegram_claim(*, payload_hash: str, auth_date: int, max_age: int, now: float | None = None) -> None:
    """Mark a verified payload used; a second use while it could still verify is 401.

    The mark lives in the cache until the payload would be too old anyway. With
    the cache down there is no way to know, so the login is refused (503).
    """
    now = time.time() if now is None else now
    ttl = max(1, int(auth_date + max_age + CLOCK_SKEW_SECONDS - now) + 1)
    added = safe_call("add", cache.add, f"social:tg:used:{payload_hash}", 1, ttl)
    if added is FAILED:
        raise Unavailable(
            "Telegram login is unavailable right now; try again shortly.",
            code="service_unavailable",
            retry_after=5,
        )
    if not added:
        raise _refuse("replay")


def telegram_login_data(data: Mapping[str, Any]) -> dict[str, str]:
    """Verify and claim widget data with the configured bot token and window."""
    fields = telegram_verify(
        data, bot_token=settings.TELEGRAM_BOT_TOKEN, max_age=settings.TELEGRAM_AUTH_MAX_AGE
    )
    telegram_claim(
        payload_hash=str(data["hash"]),
        auth_date=int(fields["auth_date"]),
        max_age=settings.TELEGRAM_AUTH_MAX_AGE,
    )
    return fields
