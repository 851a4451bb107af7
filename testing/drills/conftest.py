"""The drills start their own real servers (testing/stack.py); they need no Django test database."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.stack import have_servers


@pytest.fixture
def stack_folder() -> Iterator[Path]:
    if not have_servers():
        pytest.fail("the drills need PostgreSQL and redis-server installed (.ci/run installs them)")
    folder = Path(tempfile.mkdtemp(prefix="drill-"))
    yield folder
    if not os.environ.get("DRILL_KEEP"):  # DRILL_KEEP=1 leaves the logs for a look
        shutil.rmtree(folder, ignore_errors=True)
