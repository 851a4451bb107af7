"""The second half of a login whose first factor passed: `POST /auth/mfa/verify` (after password
login, `/auth/restore` or a social login: the session that login would have opened), and the
Django admin's code page and enrollment walk (the browser session's login).

The session's `amr` (RFC 8176) is the first factor's (`pwd`, or the provider's name) with `otp`
(a TOTP or a recovery code: both one-time passwords) and `mfa`; endpoints reserved to a role in
`MFA_REQUIRED_ROLES` look for that `mfa`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from core import metrics
from core.errors import AuthenticationFailed
from core.ids import Id

from .. import totp
from ..models import MFAChallenge, User
from ..tokens import AMR_MFA, AMR_OTP, AMR_PASSWORD
from .audit import AuditKind, audit_record
from .lockout import LOGIN_FAILED
from .mfa import mfa_required_for, mfa_totp_confirm
from .mfa_challenges import (
    PURPOSE_ADMIN,
    PURPOSE_LOGIN,
    PURPOSE_RESTORE,
    MFATokenInvalid,
    PassedChallenge,
    mfa_challenge_failure,
    mfa_challenge_get,
    mfa_challenge_open,
    mfa_challenge_pass,
    mfa_challenge_spend,
)
from .mfa_codes import Method
from .sessions import TokenPair, session_open
from .users import user_restore, user_restore_deadline


def _may_sign_in(passed: PassedChallenge) -> User:
    """The account, if it may still sign in (restored first, for a restore's challenge).

    Checked again here: an administrator may have deactivated or deleted it since the password.
    """
    user = passed.user
    if passed.purpose == PURPOSE_RESTORE and user.deleted_at is not None:
        # `user_restore_self`'s rule: the owner's own deletion, within the window.
        if not user.deleted_by_owner or user.deleted_at <= user_restore_deadline():
            raise AuthenticationFailed(LOGIN_FAILED, code="invalid_credentials")
        return user_restore(user_id=user.id)
    if not user.is_active or user.deleted_at is not None:
        raise AuthenticationFailed(LOGIN_FAILED, code="invalid_credentials")
    return user


def mfa_challenge_verify(
    *,
    mfa_token: str,
    code: str | None = None,
    recovery_code: str | None = None,
    ip: str | None,
    user_agent: str,
) -> TokenPair:
    """Check the code against the token's challenge, then open the session (`amr` with `mfa`)."""
    passed = mfa_challenge_pass(
        purposes=[PURPOSE_LOGIN, PURPOSE_RESTORE], token=mfa_token, code=code, recovery_code=recovery_code
    )
    amr = [*passed.amr, AMR_OTP, AMR_MFA]
    with transaction.atomic():
        user = _may_sign_in(passed)
        pair = session_open(user=user, ip=ip, user_agent=user_agent, amr=amr)
        audit_record(
            AuditKind.LOGIN, user_id=user.id, session_id=pair.session_id, amr=amr, method=passed.method.value
        )
    metrics.LOGINS.labels(result="succeeded").inc()
    return pair


# --- the Django admin's login: the same challenge and checks, for a browser session ------------------


def mfa_admin_challenge_open(*, user: User) -> MFAChallenge | None:
    """After the admin's password form: a challenge when the user must pass a second factor (TOTP
    on, or a role that demands it: then the challenge is the enrollment walk's proof), else None."""
    if not user.mfa_enabled and not mfa_required_for(is_superuser=user.is_superuser, roles=user.roles):
        return None
    challenge, _ = mfa_challenge_open(user=user, amr=[AMR_PASSWORD], purpose=PURPOSE_ADMIN)
    return challenge


def _admin_login_audited(user: User, challenge: MFAChallenge, method: Method) -> None:
    amr = [*challenge.amr, AMR_OTP, AMR_MFA]
    audit_record(AuditKind.LOGIN, user_id=user.id, door="admin", amr=amr, method=method.value)
    metrics.LOGINS.labels(result="succeeded").inc()


def mfa_admin_verify(*, challenge_id: Id, code: str) -> Method:
    """The admin's code page: `code` is a TOTP code or a recovery code; the checks of
    `/auth/mfa/verify` (the lockout's count, five per challenge, single use)."""
    as_totp = totp.normalized_code(code) is not None
    passed = mfa_challenge_pass(
        purposes=[PURPOSE_ADMIN],
        challenge_id=challenge_id,
        code=code if as_totp else None,
        recovery_code=None if as_totp else code,
    )
    user = _may_sign_in(passed)
    _admin_login_audited(user, passed.challenge, passed.method)
    return passed.method


def mfa_admin_enroll_confirm(*, challenge_id: Id, code: str) -> list[str]:
    """The admin's enrollment walk, its last step: the first code turns TOTP on (`mfa_totp_confirm`,
    as over the API) and, being a code of the device, completes the login waiting on the challenge."""
    challenge = mfa_challenge_get(challenge_id=challenge_id, purposes=[PURPOSE_ADMIN])
    try:
        codes = mfa_totp_confirm(user_id=challenge.user_id, code=code)
    except ValidationError:
        mfa_challenge_failure(challenge)  # five wrong codes end this login, as on the code page
        raise
    if not mfa_challenge_spend(challenge_id=challenge.id):
        raise MFATokenInvalid("The login expired meanwhile: log in again.")
    user = User.objects.get(id=challenge.user_id)
    _admin_login_audited(user, challenge, Method.TOTP)
    return codes
