"""The second factor's codes: the TOTP device's secret and time steps, and the recovery codes.

- A TOTP code is accepted once. The step it belongs to (the current one, or one either side for
  drift) is claimed with a conditional UPDATE (`last_used_step` below that step): of two workers
  handed the same code at the same moment, the database lets one row change, so one of them
  accepts it; a code of a step at or before the last used one is refused as well.
- A recovery code is stored only as an HMAC-SHA256 of it, keyed with a key derived from
  `SECRET_KEY` (and tried with each of `SECRET_KEY_FALLBACKS`, so a rotation of `SECRET_KEY`
  done Django's way keeps them working). Keyed rather than a password hash: the codes carry 59
  random bits, so nothing is gained by a slow hash, and a keyed one is looked up by an index and
  spent with one conditional UPDATE (`used_at IS NULL`) like a step. A dump of the table without
  the key tells nothing.
- Every wrong code counts toward the account's login lockout (the count of wrong passwords), at
  every door: `mfa_code_check` is the one check.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import metrics
from core.errors import Unavailable
from core.ids import Id
from notifications.models import Kind as NotificationKind
from notifications.services import event_emit, notification_send

from .. import field_encryption, totp
from ..models import RecoveryCode, TOTPDevice, User
from .audit import AuditKind, audit_record
from .lockout import lockout_check, lockout_key, lockout_record_failure

logger = logging.getLogger(__name__)


class Method(StrEnum):
    """The second factors a login can finish with (API.md: `methods`). Passkeys would be a third."""

    TOTP = "totp"
    RECOVERY_CODE = "recovery_code"


RECOVERY_CODE_COUNT = 10
#: Lower-case letters and digits without the look-alikes (i l o 0 1): 31 symbols, 12 of them a code.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_GROUPS, _RECOVERY_GROUP_LENGTH = 3, 4


# --- TOTP secrets ---------------------------------------------------------------------------------


def totp_secret(device: TOTPDevice) -> str:
    """The device's secret in plain text, for the moment it is used (never stored or logged).

    A secret that no key of `FIELD_ENCRYPTION_KEYS` opens is the server's fault (a key dropped
    before `mfa_reencrypt` ran): 503, logged, and not a wrong code, which would lock the user out.
    """
    try:
        return field_encryption.decrypt(device.secret)
    except field_encryption.UndecryptableSecret:
        logger.error("The TOTP secret of user %s opens with no key of FIELD_ENCRYPTION_KEYS", device.pk)
        raise Unavailable(
            "Two-factor authentication cannot be checked right now.", code="mfa_unavailable", retry_after=60
        ) from None


def totp_sealed(secret: str) -> str:
    """What `TOTPDevice.secret` holds for `secret`: a Fernet token under `FIELD_ENCRYPTION_KEYS`."""
    return field_encryption.encrypt(secret)


def totp_step_claim(*, device: TOTPDevice, code: str) -> bool:
    """Whether `code` is the device's, for a step not used before; the step is then spent."""
    step = totp.matching_step(totp_secret(device), code)
    if step is None:
        return False
    unused = Q(last_used_step__isnull=True) | Q(last_used_step__lt=step)
    # `secret` too: a device re-enrolled in between (a new secret) is not the one the code matched.
    claimed = TOTPDevice.objects.filter(unused, pk=device.pk, secret=device.secret).update(
        last_used_step=step
    )
    return claimed == 1


# --- recovery codes -------------------------------------------------------------------------------


def _recovery_keys() -> list[bytes]:
    """The HMAC keys, the current one first: derived from each secret key, under a label of their own."""
    secret_keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [hashlib.sha256(b"user-service recovery codes\x00" + key.encode()).digest() for key in secret_keys]


def recovery_code_normalized(code: str) -> str | None:
    """A code as typed ("ABCD-efgh 2345"): lower case, without separators; None if it cannot be one."""
    letters = "".join(ch for ch in code.lower() if ch not in "- \t")
    if len(letters) != _RECOVERY_GROUPS * _RECOVERY_GROUP_LENGTH or not set(letters) <= set(
        _RECOVERY_ALPHABET
    ):
        return None
    return letters


def _recovery_hashes(normalized: str) -> list[str]:
    return [hmac.new(key, normalized.encode(), hashlib.sha256).hexdigest() for key in _recovery_keys()]


def _recovery_code_new() -> str:
    letters = "".join(
        secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_GROUPS * _RECOVERY_GROUP_LENGTH)
    )
    size = _RECOVERY_GROUP_LENGTH
    return "-".join(letters[i : i + size] for i in range(0, len(letters), size))


def recovery_codes_issue(*, user_id: Id) -> list[str]:
    """A new set of codes in place of the old one (which stops working): the plain codes, this once."""
    codes: set[str] = set()
    while len(codes) < RECOVERY_CODE_COUNT:  # a repeat is as likely as a collision of 59-bit numbers
        codes.add(_recovery_code_new())
    with transaction.atomic():
        RecoveryCode.objects.filter(user_id=user_id).delete()
        RecoveryCode.objects.bulk_create(
            RecoveryCode(user_id=user_id, code_hash=_recovery_hashes(recovery_code_normalized(code) or "")[0])
            for code in codes
        )
    return sorted(codes)


def recovery_codes_left(*, user_id: Id) -> int:
    return RecoveryCode.objects.filter(user_id=user_id, used_at__isnull=True).count()


def recovery_code_spend(*, user_id: Id, code: str) -> bool:
    """Whether `code` is an unused recovery code of the user; it is then used. Tells the user."""
    normalized = recovery_code_normalized(code)
    if normalized is None:
        return False
    with transaction.atomic():
        spent = RecoveryCode.objects.filter(
            user_id=user_id, code_hash__in=_recovery_hashes(normalized), used_at__isnull=True
        ).update(used_at=timezone.now())
        if spent != 1:
            return False
        left = recovery_codes_left(user_id=user_id)
        audit_record(AuditKind.RECOVERY_CODE_USED, user_id=user_id, recovery_codes_left=left)
        event_emit(name="recovery_code_used", payload={"user_id": str(user_id), "recovery_codes_left": left})
        notification_send(
            user_id=user_id,
            kind=NotificationKind.SECURITY,
            title="A recovery code was used to sign in",
            body=f"One of your recovery codes was just used; {left} of them are left. If it was not you, "
            "change your password and make new recovery codes. If you lost your authenticator, turn "
            "two-factor authentication off and on again with the new device.",
            data={"event": "recovery_code_used", "recovery_codes_left": left},
        )
    return True


# --- the one check ----------------------------------------------------------------------------------


def mfa_code_check(
    *,
    user: User,
    code: str | None = None,
    recovery_code: str | None = None,
    pending: bool = False,
    recovery_in_code: bool = False,
) -> Method | None:
    """Check a second factor and spend it: the method it was, or None when it is wrong.

    `code`: a TOTP code of the user's device (`pending`: of the device being enrolled, which is
    not on yet). `recovery_code`: one of their recovery codes. `recovery_in_code`: `code` may
    also be a recovery code (the endpoints that take one `code` field: someone who lost the
    device turns TOTP off with a recovery code).

    The account's lockout first (429 while locked, whatever the code); a wrong code counts as a
    failed login. Call it outside the caller's transaction, so that the count is not rolled back
    with the change it refused.
    """
    key = lockout_key(user=user, identifier=user.username)
    lockout_check(key=key)
    method = _matching_method(
        user=user, code=code, recovery_code=recovery_code, pending=pending, recovery_in_code=recovery_in_code
    )
    if method is None:
        lockout_record_failure(key=key, user=user)
        metrics.LOGINS.labels(result="failed").inc()
        audit_record(AuditKind.LOGIN_FAILED, user_id=user.id, reason="wrong_mfa_code")
    return method


def _matching_method(
    *, user: User, code: str | None, recovery_code: str | None, pending: bool, recovery_in_code: bool
) -> Method | None:
    if code:
        device = TOTPDevice.objects.filter(user_id=user.id, confirmed_at__isnull=pending).first()
        if device is not None and totp.normalized_code(code) is not None:
            return Method.TOTP if totp_step_claim(device=device, code=code) else None
        if recovery_in_code and not pending:
            recovery_code = code
    if recovery_code and not pending and recovery_code_spend(user_id=user.id, code=recovery_code):
        return Method.RECOVERY_CODE
    return None
