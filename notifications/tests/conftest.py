"""Fixtures of the notification and event tests."""

from __future__ import annotations

from typing import Any

import pytest

from notifications import outbox


@pytest.fixture
def no_producer() -> Any:
    """The relay keeps one producer per process: none may leak from one test (and broker) to another."""
    outbox._drop_producer()
    yield
    outbox._drop_producer()
