"""The request id of the work in hand, and the logging filters that use it.

Set by the request middleware (`core.request_context`) and by a Celery task
that a request queued (`config.celery_app`), read by every log line. No
Django imports: the Celery app and the settings module load this early.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar, Token

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# What an incoming X-Request-ID may look like to be kept: a UUID, a trace id, a
# load balancer's id. Anything else (too long, spaces, quotes, control
# characters that could forge log lines) is replaced by a generated one.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/=-]{0,127}")


def sane_request_id(value: str | None) -> str | None:
    return value if value and _SANE.fullmatch(value) else None


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> Token[str | None]:
    return _request_id.set(value)


def reset_request_id(token: Token[str | None]) -> None:
    _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Every record gets `request_id` ("-" outside a request or a task it queued)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get() or "-"
        return True


# Secrets that could reach a log line through a message built by a library
# (a URL with `?oauth_token=`, a form or JSON body, an Authorization header).
# The service itself never logs them; this is the second line of defence.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer|oauth)\s+[A-Za-z0-9._~+/=-]{8,}")
_KEY_VALUE = re.compile(
    r"(?i)([\w-]*(?:password|passwd|token|secret|refresh|authorization|api_key)[\w-]*)"
    r"(\\?[\"']?\s*[=:]\s*\\?[\"']?)"
    r"([^\"'&\s,;)}\]\\]+)"
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    text = _JWT.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


# Line breaks and other control characters in a message: a value from outside (a file's
# parser warning, a header, a name) that carries them could start a forged line of its own.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """The text with its control characters escaped (`\\n`, `\\x1b`): one line, as written."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class RedactSecretsFilter(logging.Filter):
    """Masks tokens and passwords in the rendered message before any handler writes it, and
    escapes its line breaks: a message is one line (a traceback follows it, from `exc_info`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call is the logging module's to report
            return True
        clean = one_line(redact(message))
        if clean != message:
            record.msg, record.args = clean, None
        return True
