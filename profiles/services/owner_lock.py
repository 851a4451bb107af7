"""One lock per user for changes of their profile data, on both databases."""

from __future__ import annotations

from django.db.models import F

from accounts.models import User
from core.ids import Id


def owner_lock(*, user_id: Id) -> None:
    """Serialize this user's changes until the current transaction ends. Call it first in the transaction.

    It is a write that changes nothing (the user row set to itself): on
    PostgreSQL it holds the row lock, so a second change of the same user waits
    and then reads what the first committed; on SQLite, a write is what takes
    the database's write lock while waiting for it (a transaction that reads
    first is refused at once, "database is locked", when another writes).
    """
    User.objects.filter(id=user_id).update(updated_at=F("updated_at"))
