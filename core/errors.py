"""Domain errors: what kind of "no" a service says, without a word of HTTP.

Services raise these; the API layer (`core.exceptions.STATUS`) is the one place that maps each
kind to a status code and its headers. A service never picks a status code: the same refusal
reaches the admin (as a message), a command (as its error) and the API (as JSON) alike.

- `ServiceError`: the input breaks a rule (the API's 400);
- `NotFound`, `Forbidden`, `AuthenticationFailed`: no such object for this caller, not allowed,
  not authenticated;
- `RateLimited(retry_after)`, `Unavailable(retry_after)`: not now, try again in so many seconds
  (too many attempts; a dependency away);
- `UpstreamFailed`: a provider we called answered garbage or nothing;
- `TooLarge`, `Unsupported`: an upload or body past a size, or of a kind we do not read.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A business rule said no: `detail` for people, `code` (a stable word) for programs.

    `extra`: further fields of the answer that a client needs to go on (the `mfa_token` of an
    `mfa_required`), beside `detail` and `code`, which they never replace.
    """

    code: str = "invalid"

    def __init__(
        self, detail: str, *, code: str | None = None, extra: dict[str, object] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra: dict[str, object] = dict(extra or {})


class NotFound(ServiceError):
    code = "not_found"


class Forbidden(ServiceError):
    code = "permission_denied"


class AuthenticationFailed(ServiceError):
    code = "authentication_failed"


class MFARequired(Forbidden):
    """Not without a second factor: a login that passed its password (its `extra` carries the
    `mfa_token` and `methods` to go on with), or a role's endpoint called from a session that
    did not pass MFA."""

    code = "mfa_required"


class Conflict(ServiceError):
    """The request was valid, but the state changed under it (another account took the address)."""

    code = "conflict"


class _TryLater(ServiceError):
    def __init__(self, detail: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = max(1, int(retry_after))


class RateLimited(_TryLater):
    """Too many attempts: refused for `retry_after` seconds."""

    code = "throttled"


class Unavailable(_TryLater):
    """A dependency (the cache, a provider, the parsers) cannot serve now: retry in `retry_after`."""

    code = "unavailable"


class UpstreamFailed(ServiceError):
    """A provider we called failed (no answer, or garbage)."""

    code = "provider_unavailable"


class TooLarge(ServiceError):
    code = "too_large"


class Unsupported(ServiceError):
    code = "unsupported"
