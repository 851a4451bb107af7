"""The last administrator: no door may leave the service without an active administrator.

An administrator is what `accounts.models.user_is_admin` says (a superuser, or a
holder of the `admin` role) on an account that is active and not deleted, the
same test the Django admin's permission backend makes. Every change that can
take that away from someone (deactivation, soft or hard delete, a role taken,
the superuser flag cleared, a role deleted) runs inside `admins_kept()`: the
change is made, and if there was an administrator before and none is left,
it is rolled back and refused with 400 `last_admin`. Checking what is left,
rather than predicting it per kind of change, keeps one rule for all of them.

Two administrators removing each other at the same moment must leave one, so
the check and the change are serialized: on PostgreSQL by a transaction-level
advisory lock taken before any row lock (so no lock-order deadlock with the
row locks the services take), on SQLite by its IMMEDIATE transactions (the
embedded default's settings), which let one writer in at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import Q

from core.errors import ServiceError

from ..models import ROLE_ADMIN, User, UserQuerySet

#: The advisory lock's key on PostgreSQL (any 64-bit number the service uses for nothing else).
ADMINS_LOCK_KEY = 0x41444D494E53  # "ADMINS"

LAST_ADMIN = (
    "This would leave the service without an active administrator. "
    "Make another account an administrator first."
)


class LastAdmin(ServiceError):
    """The change would remove the last active administrator."""

    code = "last_admin"

    def __init__(self, detail: str = LAST_ADMIN) -> None:
        super().__init__(detail)


def admins_active() -> UserQuerySet:
    """The active administrators: active, not deleted, a superuser or a holder of the `admin` role."""
    return User.objects.get_queryset().filter(
        Q(is_superuser=True) | Q(groups__name=ROLE_ADMIN), is_active=True, deleted_at__isnull=True
    )


def admins_lock() -> None:
    """Serialize the changes that can remove an administrator, until the transaction ends.

    PostgreSQL: `pg_advisory_xact_lock`, re-entrant within a transaction. SQLite
    needs nothing more: the settings open every transaction IMMEDIATE, so a
    second writer waits for the first to commit before it reads anything.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("admins_lock() outside a transaction would be released at once")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADMINS_LOCK_KEY])


@contextmanager
def admins_kept() -> Iterator[None]:
    """Around a change that may remove administrators: refuse it (`LastAdmin`) if it leaves none.

    The block runs in its own savepoint, so a refusal rolls back exactly the
    change, with its events, audit rows and after-commit work, even when the
    caller catches the error and goes on (a bulk command's `--continue-on-error`).
    Take it before locking any user row: the lock order is this lock, then rows.
    """
    with transaction.atomic():
        admins_lock()
        had_admin = admins_active().exists()
        yield
        if had_admin and not admins_active().exists():
            raise LastAdmin()
