"""The step between a first factor and the second: what an `mfa_token` names (API.md, MFA).

A login (password, restore, social, the Django admin's form) of an account with TOTP on opens a
challenge instead of a session: a row in `MFAChallenge` with the SHA-256 of a random token, the
first factor(s) in `amr`, and a deadline `MFA_TOKEN_SECONDS` away. The client gets the token once
(403 `mfa_required`); `mfa_challenge_pass` takes it back with a code.

A table and not the cache: the token must be single use across every worker of every host, and
the embedded default (SQLite, one process, several threads) has no shared cache; and a cache
outage must never read as "no such challenge spent". Single use, the five-failure limit and the
expiry are conditional UPDATEs, so two requests with one token cannot both pass.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from core.errors import AuthenticationFailed, MFARequired
from core.ids import Id
from core.request_context import current_request_meta

from ..models import MFAChallenge, User
from .lockout import lockout_key, lockout_reset
from .mfa_codes import Method, mfa_code_check

PURPOSE_LOGIN = "login"
PURPOSE_RESTORE = "restore"
#: The Django admin's login: its challenge is kept in the browser session, never handed out.
PURPOSE_ADMIN = "admin"
#: Wrong codes that spend a token (API.md: five).
MAX_FAILURES = 5
METHODS = [Method.TOTP.value, Method.RECOVERY_CODE.value]


class MFATokenInvalid(AuthenticationFailed):
    code = "mfa_token_invalid"


class MFACodeInvalid(AuthenticationFailed):
    code = "mfa_code_invalid"


def _token_invalid() -> MFATokenInvalid:
    return MFATokenInvalid("The MFA token is invalid, expired or spent: log in again.")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mfa_challenge_open(
    *, user: User, amr: Sequence[str], purpose: str, ip: str | None = None, user_agent: str | None = None
) -> tuple[MFAChallenge, str]:
    """A challenge for `user`, who passed `amr`; the row and its token (returned this once)."""
    meta = current_request_meta()
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    challenge = MFAChallenge.objects.create(
        user=user,
        token_hash=_hash(token),
        amr=list(amr),
        purpose=purpose,
        ip=ip if ip is not None else (meta.ip if meta else None),
        user_agent=(user_agent if user_agent is not None else (meta.user_agent if meta else ""))[:512],
        created_at=now,
        expires_at=now + timedelta(seconds=settings.MFA_TOKEN_SECONDS),
    )
    return challenge, token


def mfa_challenge_required(
    *, user: User, amr: Sequence[str], purpose: str, ip: str | None = None, user_agent: str | None = None
) -> MFARequired:
    """Open a challenge; the 403 `mfa_required` that hands its token out, for the caller to raise."""
    _, token = mfa_challenge_open(user=user, amr=amr, purpose=purpose, ip=ip, user_agent=user_agent)
    return MFARequired(
        "A second factor is required: send a code from your authenticator app (or a recovery code) "
        "with this mfa_token to /auth/mfa/verify.",
        extra={"mfa_token": token, "methods": list(METHODS)},
    )


def mfa_challenge_demand(
    *, user: User, amr: Sequence[str], purpose: str, ip: str | None = None, user_agent: str | None = None
) -> None:
    """For an account with TOTP on, stop the login here: 403 `mfa_required` with a fresh token.

    Called once the first factor passed (a wrong password never gets this far: nothing about
    the account is told to someone without it).
    """
    if user.mfa_enabled:
        raise mfa_challenge_required(user=user, amr=amr, purpose=purpose, ip=ip, user_agent=user_agent)


@dataclass(frozen=True)
class PassedChallenge:
    """A challenge answered with the right code: who, the first factors, and the second."""

    user: User
    challenge: MFAChallenge
    method: Method

    @property
    def purpose(self) -> str:
        return self.challenge.purpose

    @property
    def amr(self) -> list[str]:
        return [str(method) for method in self.challenge.amr]


def _live(challenges: Collection[MFAChallenge]) -> MFAChallenge | None:
    now = timezone.now()
    for challenge in challenges:
        if challenge.used_at is None and challenge.expires_at > now and challenge.failures < MAX_FAILURES:
            return challenge
    return None


def mfa_challenge_get(
    *, token: str | None = None, challenge_id: Id | None = None, purposes: Collection[str]
) -> MFAChallenge:
    """The live (unspent, unexpired) challenge a token or id names, of one of `purposes`; else 401."""
    rows = MFAChallenge.objects.filter(purpose__in=list(purposes))
    if token is not None:
        rows = rows.filter(token_hash=_hash(token))
    elif challenge_id is not None:
        rows = rows.filter(id=challenge_id)
    else:
        raise _token_invalid()
    challenge = _live(list(rows[:1]))
    if challenge is None:
        raise _token_invalid()
    return challenge


def mfa_challenge_spend(*, challenge_id: Id) -> bool:
    """Use a live challenge up (single use); False when another request used or spent it first."""
    now = timezone.now()
    return (
        MFAChallenge.objects.filter(
            id=challenge_id, used_at__isnull=True, expires_at__gt=now, failures__lt=MAX_FAILURES
        ).update(used_at=now)
        == 1
    )


def mfa_challenge_failure(challenge: MFAChallenge) -> None:
    """One more wrong code; the fifth spends the token."""
    MFAChallenge.objects.filter(id=challenge.id, used_at__isnull=True).update(failures=F("failures") + 1)
    MFAChallenge.objects.filter(id=challenge.id, used_at__isnull=True, failures__gte=MAX_FAILURES).update(
        used_at=timezone.now()
    )


def mfa_challenge_pass(
    *,
    purposes: Collection[str],
    token: str | None = None,
    challenge_id: Id | None = None,
    code: str | None = None,
    recovery_code: str | None = None,
) -> PassedChallenge:
    """Answer a challenge: the right code spends it (and resets the account's failed-login count),
    a wrong one counts toward the lockout and toward the token's five.

    401 `mfa_token_invalid` for a token that is unknown, expired, used or spent (checked before
    the code, so a dead token tests no code), 401 `mfa_code_invalid` for a wrong or replayed code,
    429 while the account is locked.
    """
    challenge = mfa_challenge_get(token=token, challenge_id=challenge_id, purposes=purposes)
    user = User.objects.select_related("totp_device").filter(id=challenge.user_id).first()
    if user is None or not user.mfa_enabled:  # MFA was reset since the password: log in again
        mfa_challenge_spend(challenge_id=challenge.id)
        raise _token_invalid()
    method = mfa_code_check(user=user, code=code, recovery_code=recovery_code)
    if method is None:
        mfa_challenge_failure(challenge)
        raise MFACodeInvalid("The code is not correct, or was used already.")
    if not mfa_challenge_spend(challenge_id=challenge.id):
        raise _token_invalid()  # another request with the same token got there first
    # The login is complete only now: a right password alone never clears the wrong codes' count.
    lockout_reset(key=lockout_key(user=user, identifier=user.username))
    return PassedChallenge(user=user, challenge=challenge, method=method)
