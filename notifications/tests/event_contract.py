"""Every event the service emits during the test suite is registered and matches its schema.

A pytest plugin (root `conftest.py`: `pytest_plugins`). At the end of each test that used the
database, before its transaction is rolled back, it reads the outbox rows the test left and checks
each against `notifications.event_catalog`: a registered name, the topic of its registration, and
a payload that validates against the event's schema with no undeclared field. A test fails on the
first event that breaks its contract, naming it.

The check is here and not in `event_emit`: the hot path pays nothing for it (the issue asks for the
refusal in tests, not at run time), and one place sees the rows of every door, `event_emit` and the
bulk writers (`event_fields` rows) alike.

Events a test writes itself (the outbox's own tests use names like `thing_happened` to exercise
the relay) are not the service's: a row saved from a test module is left out. Rows the service's
code writes go through `event_emit`'s save or `bulk_create`, whose caller is never a test module.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError
from jsonschema import Draft7Validator, FormatChecker

from notifications import event_catalog

PROJECT = Path(__file__).resolve().parents[2]
_checker = FormatChecker()


@_checker.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """RFC 3339 with its zone, as `occurred_at`, `created_at` and `deleted_at` are written."""
    if not isinstance(value, str):
        return True
    return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The published schema, closed: the service itself sends no field it has not declared."""
    return {**schema, "additionalProperties": False}


def payload_problems(name: str, payload: Any, *, topic: str | None = None) -> list[str]:
    """What is wrong with an emitted event (empty: nothing), in words a failing test shows."""
    event = event_catalog.EMITTED.get(name)
    if event is None:
        return [f"{name!r} is not a registered event (notifications/event_catalog.py)"]
    problems = []
    if topic is not None and topic != event.topic.address():
        problems.append(f"{name} went to topic {topic!r}, registered on {event.topic.setting}")
    validator = Draft7Validator(_strict(event.schema), format_checker=_checker)
    for error in sorted(validator.iter_errors(payload), key=lambda error: list(error.path)):
        where = "/".join(str(part) for part in error.path) or "(payload)"
        problems.append(f"{name}: {where}: {error.message}")
    return problems


# --- which rows a test wrote itself ---------------------------------------------------------------

_written_by_tests: set[str] = set()


def _from_a_test_module() -> bool:
    """Whether the code that saves the row (the first frame outside Django and the outbox's own
    modules) is a test module's."""
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        inside = "/django/" in path or path.endswith(("notifications/services.py", __file__))
        if not inside:
            return "/tests/" in path or "/benchmarks/" in path or "/testing/" in path
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _remember_test_rows() -> None:
    from notifications.models import OutboxEvent

    original = OutboxEvent.save

    def save(self: OutboxEvent, *args: Any, **kwargs: Any) -> None:
        if _from_a_test_module():
            _written_by_tests.add(str(self.pk))
        original(self, *args, **kwargs)

    OutboxEvent.save = save  # type: ignore[method-assign]


def pytest_sessionstart(session: pytest.Session) -> None:
    _remember_test_rows()


def _rows_left() -> list[Any] | None:
    """The outbox rows in the test's database, or None for a test without database access."""
    from notifications.models import OutboxEvent

    try:
        return list(OutboxEvent.objects.values("id", "key", "topic", "payload"))
    except (RuntimeError, DatabaseError):  # no database for this test, or one it broke on purpose
        return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    """Before the fixtures' teardown (the test's transaction still open): check its events."""
    problems: list[str] = []
    try:
        rows = _rows_left() if item.get_closest_marker("django_db") or _uses_db(item) else None
        for row in rows or ():
            if str(row["id"]) in _written_by_tests:
                continue
            problems += payload_problems(row["key"], row["payload"], topic=row["topic"])
    finally:
        _written_by_tests.clear()
    result = yield
    if problems:
        pytest.fail("emitted events break their contract:\n  " + "\n  ".join(problems[:20]), pytrace=False)
    return result


def _uses_db(item: pytest.Item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    return bool(names & {"db", "transactional_db", "django_db_reset_sequences", "live_server"})
