"""Brute-force lockout of password login, per account.

Written by hand rather than with django-axes: axes keys its counters by the
login name as typed, so "alice", "ALICE" and alice's email would be three
counters; ours count per account, whichever name is used, and also per unknown
name (so a locked answer cannot tell a real account from a made-up one). The
counters live in the database, so a cache outage never reads as "not locked".

Rules (API.md): `LOGIN_MAX_ATTEMPTS` failures lock password login for
`LOGIN_LOCKOUT_SECONDS`, even with the right password; a success resets the
count; failures during a lockout do not extend it. The same count applies at
every door that checks a password: `accounts.services.credentials` holds those checks.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import metrics
from core.errors import RateLimited
from core.ids import Id
from notifications.models import Kind as NotificationKind
from notifications.services import notification_send

from ..models import LoginLockout, User
from .audit import AuditKind, audit_record


def lockout_key(*, user: User | None, identifier: str) -> str:
    return f"user:{user.id}" if user is not None else f"name:{identifier.strip().lower()[:290]}"


LOGIN_FAILED = "Invalid username or password."


def _lockout_row(key: str) -> tuple[bool, int]:
    """Whether `key` has failures counted, and the seconds until it may log in again (0: not locked)."""
    rows = list(LoginLockout.objects.filter(key=key).values_list("locked_until", flat=True)[:1])
    locked_until = rows[0] if rows else None
    now = timezone.now()
    if locked_until is None or locked_until <= now:
        return bool(rows), 0
    return True, max(1, math.ceil((locked_until - now).total_seconds()))


def lockout_check(*, key: str) -> bool:
    """Raise 429 with `Retry-After` while `key` is locked; else whether it has failures counted
    (none: a success has nothing to reset, and skips `lockout_reset`'s transaction)."""
    counted, seconds = _lockout_row(key)
    if seconds:
        raise RateLimited("Too many failed logins. Try again later.", code="locked_out", retry_after=seconds)
    return counted


@transaction.atomic
def lockout_record_failure(*, key: str, user: User | None) -> bool:
    """Count a failure; True when this failure started a lockout."""
    row, _ = LoginLockout.objects.select_for_update().get_or_create(key=key, defaults={"user": user})
    now = timezone.now()
    if row.locked_until is not None:
        if row.locked_until > now:
            return False  # locked already: not counted, so the lockout is not extended
        row.failures, row.locked_until = 0, None  # an expired lockout starts a fresh count
    row.failures += 1
    started = row.failures >= settings.LOGIN_MAX_ATTEMPTS
    if started:
        row.locked_until = now + timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
        metrics.LOCKOUTS_STARTED.inc()
    row.save()
    if started and user is not None:
        audit_record(AuditKind.LOCKOUT, user_id=user.id, failures=row.failures)
        notification_send(
            user_id=user.id,
            kind=NotificationKind.SECURITY,
            title="Your account was locked after failed logins",
            body=f"{row.failures} failed logins in a row: password login is paused for "
            f"{settings.LOGIN_LOCKOUT_SECONDS // 60} minutes. If it was not you, reset your password.",
            data={"event": "lockout"},
        )
    return started


def lockout_reset(*, key: str) -> None:
    LoginLockout.objects.filter(key=key).delete()


def lockout_unlock_user(*, user_id: Id, actor_id: Id | None = None) -> bool:
    """An administrator lifts a user's lockout; True if there was one."""
    deleted, _ = LoginLockout.objects.filter(key=f"user:{user_id}").delete()
    if deleted:
        audit_record(AuditKind.UNLOCK, user_id=user_id, actor_id=actor_id)
    return bool(deleted)
