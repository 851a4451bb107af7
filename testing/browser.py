"""A headless Chromium for the tests that drive a page with Playwright: Debian's chromium, which CI
installs, started with what a throwaway profile on a machine without internet needs."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Where the browser tests keep their screenshots (git-ignored; CI keeps them as an artifact).
SCREENSHOTS = ROOT / "artifacts" / "screenshots"

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"Chromium is not installed at {CHROMIUM} (CI installs it)"
)
