"""Fixtures of the account tests."""

from __future__ import annotations

from typing import Any

import pytest

from accounts import totp
from accounts.tests.mfa_support import NOW


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Hold the service's TOTP clock at `NOW` (move it with `clock.at = ...`)."""

    class Clock:
        at = NOW

    held = Clock()
    monkeypatch.setattr(totp, "clock", lambda: held.at)
    return held
