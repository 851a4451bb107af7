"""The drills start their own real servers (testing/stack.py); they need no Django test database."""

from __future__ import annotations

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
    shutil.rmtree(folder, ignore_errors=True)
