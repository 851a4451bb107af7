"""Multi-factor authentication of an account: who must have it, turning TOTP on and off, recovery
codes, and the reset of a lost device (API.md, "Multi-factor authentication").

Every door calls these: the API (`/auth/mfa/...`), the Django admin (its enrollment walk and the
reset on a user's page) and `manage.py mfa_reset`. Turning MFA on or off refreshes the cached user
(its `mfa`), is audited, emitted (`mfa_enabled`, `mfa_disabled`) and told to the user.

Checks that count toward the lockout (a wrong password, a wrong code) run before the change's
transaction, so that a refused attempt is still counted.

One kind of device for now (TOTP, one per account: `TOTPDevice`); a second kind (passkeys) would
add its own model and a `Method`, and `mfa_enabled` would ask for any confirmed device.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.errors import Forbidden, NotFound, ServiceError
from core.ids import Id
from notifications.models import Kind as NotificationKind
from notifications.services import event_emit, notification_send

from .. import cache as auth_cache
from .. import totp
from ..models import ROLE_ADMIN, MFAChallenge, RecoveryCode, TOTPDevice, User
from .audit import AuditKind, audit_record
from .mfa_challenges import PURPOSE_ADMIN, mfa_challenge_get
from .mfa_codes import (
    Method,
    mfa_code_check,
    recovery_codes_issue,
    recovery_codes_left,
    totp_sealed,
    totp_secret,
)
from .reauth import reauth_confirm

WRONG_CODE = "The code is not correct, or was used already."


def mfa_required_for(*, is_superuser: bool, roles: Iterable[str]) -> bool:
    """Does a role of this user demand MFA (`MFA_REQUIRED_ROLES`)? A superuser is an
    administrator (`user_is_admin`), so `admin` there covers superusers too."""
    required = set(settings.MFA_REQUIRED_ROLES)
    return bool(required.intersection(roles)) or (is_superuser and ROLE_ADMIN in required)


def _user(user_id: Id) -> User:
    user = User.objects.select_related("totp_device").filter(id=user_id).first()
    if user is None:
        raise NotFound("User not found.")
    return user


@dataclass(frozen=True)
class MFAStatus:
    """`GET /auth/mfa`."""

    totp: bool
    recovery_codes_left: int
    required: bool


def mfa_status(*, user_id: Id) -> MFAStatus:
    user = _user(user_id)
    on = user.mfa_enabled
    return MFAStatus(
        totp=on,
        recovery_codes_left=recovery_codes_left(user_id=user.id) if on else 0,
        required=mfa_required_for(is_superuser=user.is_superuser, roles=user.roles),
    )


@dataclass(frozen=True)
class TOTPEnrollment:
    """A new secret, pending until a first code confirms it: shown to its owner this once."""

    secret: str
    otpauth_uri: str


def _enroll(user: User) -> TOTPEnrollment:
    secret = totp.new_secret()
    sealed, now = totp_sealed(secret), timezone.now()
    with transaction.atomic():
        # Two starts at once: one after the other (the second one's secret is the one that counts).
        User.objects.select_for_update().filter(id=user.id).values_list("id", flat=True).first()
        # A pending secret of an earlier start is replaced (only the last one shown can be
        # confirmed); a confirmed device never is, even by a confirm that lands meanwhile.
        replaced = TOTPDevice.objects.filter(user_id=user.id, confirmed_at__isnull=True).update(
            secret=sealed, last_used_step=None, created_at=now
        )
        if not replaced:
            if TOTPDevice.objects.filter(user_id=user.id).exists():
                raise ServiceError(
                    "Two-factor authentication is on already; turn it off before enrolling another device.",
                    code="mfa_already_enabled",
                )
            TOTPDevice.objects.create(user_id=user.id, secret=sealed, created_at=now)
    return TOTPEnrollment(secret, totp.provisioning_uri(secret, account=user.email or user.username))


def mfa_totp_enroll(*, user_id: Id, session_id: Id | None, current_password: str | None) -> TOTPEnrollment:
    """`POST /auth/mfa/totp`: re-authentication first (`current_password`, or a recent session for an
    account without one), then a new pending secret."""
    user = _user(user_id)
    reauth_confirm(user=user, session_id=session_id, password=current_password)
    return _enroll(user)


def mfa_totp_enroll_at_admin_login(*, challenge_id: Id) -> TOTPEnrollment:
    """The Django admin's enrollment walk: the proof is the password typed moments ago, its login
    waiting on this challenge (alive for `MFA_TOKEN_SECONDS`), as the API's is `current_password`."""
    challenge = mfa_challenge_get(challenge_id=challenge_id, purposes=[PURPOSE_ADMIN])
    return _enroll(_user(challenge.user_id))


def mfa_totp_pending_at_admin_login(*, challenge_id: Id) -> TOTPEnrollment | None:
    """The enrollment the walk started and shows again after a mistyped code (the app has it
    already); None when there is none waiting."""
    challenge = mfa_challenge_get(challenge_id=challenge_id, purposes=[PURPOSE_ADMIN])
    user = _user(challenge.user_id)
    device = TOTPDevice.objects.filter(user_id=user.id, confirmed_at__isnull=True).first()
    if device is None:
        return None
    secret = totp_secret(device)
    return TOTPEnrollment(secret, totp.provisioning_uri(secret, account=user.email or user.username))


def _told(user_id: Id, *, title: str, body: str, event: str) -> None:
    notification_send(
        user_id=user_id, kind=NotificationKind.SECURITY, title=title, body=body, data={"event": event}
    )


def mfa_totp_confirm(*, user_id: Id, code: str) -> list[str]:
    """`POST /auth/mfa/totp/confirm`: the first code turns TOTP on; 10 recovery codes, shown this once."""
    user = _user(user_id)
    device = TOTPDevice.objects.filter(user_id=user.id).first()
    if device is None or device.confirmed_at is not None:
        raise ServiceError(
            "No enrollment is waiting for a code: start with POST /auth/mfa/totp.", code="mfa_not_pending"
        )
    if mfa_code_check(user=user, code=code, pending=True) is None:
        raise ValidationError({"code": [WRONG_CODE]})
    with transaction.atomic():
        # The secret the code matched: an enrollment restarted in between is not turned on by it.
        turned_on = TOTPDevice.objects.filter(
            user_id=user.id, confirmed_at__isnull=True, secret=device.secret
        ).update(confirmed_at=timezone.now())
        if not turned_on:
            raise ServiceError("The enrollment changed meanwhile: start again.", code="mfa_not_pending")
        codes = recovery_codes_issue(user_id=user.id)
        audit_record(AuditKind.MFA_ENABLED, user_id=user.id, method=Method.TOTP.value)
        event_emit(name="mfa_enabled", payload={"user_id": str(user.id), "method": Method.TOTP.value})
        _told(
            user.id,
            title="Two-factor authentication is on",
            body="Logins to your account now ask for a code from your authenticator app after the "
            "password. Keep your recovery codes somewhere safe. If it was not you, reset your password.",
            event="mfa_enabled",
        )
        auth_cache.refresh_user(user.id)
    return codes


def _remove(user: User, *, by: str, actor_id: Id | None) -> bool:
    """Remove the device, the recovery codes and the waiting challenges; False if there was nothing."""
    with transaction.atomic():
        User.objects.select_for_update().filter(id=user.id).values_list("id", flat=True).first()
        was_on = TOTPDevice.objects.filter(user_id=user.id, confirmed_at__isnull=False).exists()
        TOTPDevice.objects.filter(user_id=user.id).delete()
        RecoveryCode.objects.filter(user_id=user.id).delete()
        MFAChallenge.objects.filter(user_id=user.id, used_at__isnull=True).update(used_at=timezone.now())
        if not was_on:
            return False
        audit_record(AuditKind.MFA_DISABLED, user_id=user.id, actor_id=actor_id, by=by)
        event_emit(name="mfa_disabled", payload={"user_id": str(user.id), "by": by})
        who = "You" if by == "owner" else "An administrator"
        _told(
            user.id,
            title="Two-factor authentication is off",
            body=f"{who} turned off two-factor authentication on your account: logins ask for the "
            "password only, and your recovery codes no longer work. If it was not you, reset your "
            "password and turn it on again.",
            event="mfa_disabled",
        )
        auth_cache.refresh_user(user.id)
    return True


def mfa_totp_disable(*, user_id: Id, session_id: Id | None, current_password: str | None, code: str) -> None:
    """`DELETE /auth/mfa/totp`: re-authentication and a code (a TOTP or a recovery code, for whoever
    lost the device); the device and the recovery codes are gone. Not while a role demands MFA."""
    user = _user(user_id)
    if mfa_required_for(is_superuser=user.is_superuser, roles=user.roles):
        raise Forbidden(
            "A role of yours requires two-factor authentication: it cannot be turned off.",
            code="mfa_required_by_role",
        )
    if not user.mfa_enabled:
        raise ServiceError("Two-factor authentication is not on.", code="mfa_not_enabled")
    reauth_confirm(user=user, session_id=session_id, password=current_password)
    if mfa_code_check(user=user, code=code, recovery_in_code=True) is None:
        raise ValidationError({"code": [WRONG_CODE]})
    _remove(user, by="owner", actor_id=None)


def mfa_recovery_codes_regenerate(*, user_id: Id, code: str) -> list[str]:
    """`POST /auth/mfa/recovery-codes`: a code (TOTP or recovery) for a new set; the old set stops working."""
    user = _user(user_id)
    if not user.mfa_enabled:
        raise ServiceError("Two-factor authentication is not on.", code="mfa_not_enabled")
    if mfa_code_check(user=user, code=code, recovery_in_code=True) is None:
        raise ValidationError({"code": [WRONG_CODE]})
    with transaction.atomic():
        codes = recovery_codes_issue(user_id=user.id)
        audit_record(AuditKind.RECOVERY_CODES_GENERATED, user_id=user.id, count=len(codes))
        _told(
            user.id,
            title="New recovery codes were made",
            body="A new set of recovery codes was made for your account; the old ones no longer work. "
            "If it was not you, change your password.",
            event="recovery_codes_generated",
        )
    return codes


def mfa_reset(*, user_id: Id, actor_id: Id | None, by: str) -> bool:
    """A lost device: an administrator (the Django admin, behind their own MFA) or a shell
    (`manage.py mfa_reset`) removes the user's MFA; audited with the actor, the user is told.
    False when the user had none. A user whose role demands MFA enrolls again at the next login."""
    if by not in {"administrator", "command"}:
        raise ValueError(f"unknown reset door {by!r}")
    return _remove(_user(user_id), by=by, actor_id=actor_id)
