"""What a server process does once when it starts."""

from __future__ import annotations

import logging

from django.db import DatabaseError

logger = logging.getLogger(__name__)


def on_server_start() -> None:
    """Create the first admin when there is none (after `migrate`, whichever server runs)."""
    from accounts.services import ensure_admin

    try:
        ensure_admin()
    except DatabaseError as exc:
        logger.error("Admin account not checked (has `manage.py migrate` run?): %s", exc)
