"""The sections of a user's data export that other apps own, registered by them.

`GET /users/me/export` is this app's (the account, its sessions, its audit trail), but the data of
the apps above it (resumes, LLM settings, ...) belongs to them: each registers a function that
returns its sections, once, from its `AppConfig.ready()`, so that this app never imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.ids import Id

ExportSections = Callable[..., dict[str, Any]]

_sections: dict[str, ExportSections] = {}


def export_sections_register(name: str, sections: ExportSections) -> None:
    """`sections(user_id=...)` returns `{section: data}` for the export; `name` keeps it registered once."""
    _sections[name] = sections


def export_sections_of(*, user_id: Id) -> dict[str, Any]:
    """Every registered app's sections for this user, in the order the apps registered."""
    result: dict[str, Any] = {}
    for sections in _sections.values():
        result.update(sections(user_id=user_id))
    return result
