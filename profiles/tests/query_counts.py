"""The pinned query counts of list endpoints: one file for the project, `config/tests/query_counts.json`."""

from __future__ import annotations

import json
from pathlib import Path

FILE = Path(__file__).resolve().parents[2] / "config" / "tests" / "query_counts.json"


def expected_queries(key: str) -> int:
    """The pinned count of `"METHOD /api/v1/path"`."""
    return int(json.loads(FILE.read_text())[key])
