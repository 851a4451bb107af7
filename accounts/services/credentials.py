"""The password checks of every door, all under the per-account lockout (`lockout`).

- `credentials_check`: a login (the API's, `/auth/restore`'s, Django's `authenticate()` for the
  admin's form through `accounts.backends.LockoutModelBackend`): one 401 whatever was wrong;
- `password_confirm`: an endpoint that asks for the current password (a field error);
- `password_verify`: the check itself, as long for an unknown user as for a known one.
"""

from __future__ import annotations

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError

from core import metrics
from core.errors import AuthenticationFailed

from ..models import User
from .audit import AuditKind, audit_record
from .email_verification import email_verification_check
from .lockout import LOGIN_FAILED, lockout_check, lockout_key, lockout_record_failure, lockout_reset


def password_confirm(*, user: User, password: str, field: str) -> None:
    """An endpoint that asks for the current password checks it as login does.

    The same per-account lockout: a locked account is refused (429 with
    `Retry-After`) even with the right password, a wrong one counts as a
    failed login and is a field error (400) on `field`, the right one resets
    the count (with MFA on, only a completed login does: a right password alone must not
    clear the count of wrong codes). Call it outside the caller's transaction: a counted failure
    must not roll back with the change it refused.
    """
    key = lockout_key(user=user, identifier=user.username)
    counted = lockout_check(key=key)
    if not user.check_password(password):
        lockout_record_failure(key=key, user=user)
        audit_record(AuditKind.LOGIN_FAILED, user_id=user.id, reason="wrong_current_password", field=field)
        raise ValidationError({field: ["The password is not correct."]})
    # With MFA on, only a completed login (the code) resets the count.
    if counted and not user.mfa_enabled:
        lockout_reset(key=key)


def password_verify(user: User | None, password: str) -> bool:
    """Check a password, taking about the same time whether or not the user exists."""
    if user is None:
        make_password(password)  # hash anyway: an unknown name is not told apart by timing
        return False
    return user.check_password(password)  # also upgrades an old hash to the first hasher


def credentials_check(*, identifier: str, password: str) -> User:
    """The password check of every login door: lockout first (even the right password
    is refused, 429), then the password; a failure counts, a success resets the count (for an
    account with MFA on, the second factor's success does: `mfa_challenge_pass`).

    Unknown user, wrong password, inactive or deleted account: one 401. No
    transaction is held while the password is hashed.
    """
    user = User.objects.by_login(identifier).select_related("totp_device").first()
    key = lockout_key(user=user, identifier=identifier)
    counted = lockout_check(key=key)
    if not password_verify(user, password):
        lockout_record_failure(key=key, user=user)
        metrics.LOGINS.labels(result="failed").inc()
        audit_record(AuditKind.LOGIN_FAILED, user_id=user.id if user else None)
        raise AuthenticationFailed(LOGIN_FAILED, code="invalid_credentials")
    assert user is not None
    if not user.is_active or user.deleted_at is not None:
        metrics.LOGINS.labels(result="failed").inc()
        audit_record(AuditKind.LOGIN_FAILED, user_id=user.id, reason="inactive")
        raise AuthenticationFailed(LOGIN_FAILED, code="invalid_credentials")
    # With MFA on, the login is complete (and the count reset) at the code.
    if counted and not user.mfa_enabled:
        lockout_reset(key=key)
    email_verification_check(user)  # after the password: an unverified account reveals nothing to a guess
    return user
