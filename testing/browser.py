"""A headless Chromium for the tests that drive a page with Playwright: Debian's chromium, which CI
installs, started with what a throwaway profile on a machine without internet needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


@contextmanager
def browser_page(
    folder: Path, prefix: str = "", *, width: int
) -> Iterator[tuple[Any, Callable[[str], None]]]:
    """A page of a fresh headless Chromium, and `shot(name)`: a full-page screenshot in `folder`,
    numbered in order (`[prefix-]NN-name.png`, the earlier run's removed first). An exception in the
    block leaves `[prefix-]failure.png` of the page as it stood."""
    from playwright.sync_api import sync_playwright

    start = f"{prefix}-" if prefix else ""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{start}*.png"):
        old.unlink()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.set_default_timeout(10_000)
        taken = 0

        def shot(name: str) -> None:
            nonlocal taken
            taken += 1
            page.screenshot(path=str(folder / f"{start}{taken:02d}-{name}.png"), full_page=True)

        try:
            yield page, shot
        except Exception:
            page.screenshot(path=str(folder / f"{start}failure.png"), full_page=True)
            raise
        finally:
            browser.close()
