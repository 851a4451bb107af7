"""Fixtures of the document tests: uploaded files kept in a folder of the test's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from profiles.models import documents_storage


@pytest.fixture
def document_dir(settings: Any, tmp_path: Path) -> Any:
    folder = tmp_path / "documents"
    settings.STORAGES = {
        **settings.STORAGES,
        "documents": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(folder), "base_url": None, "file_permissions_mode": 0o600},
        },
    }
    documents_storage.reset()
    yield folder
    documents_storage.reset()
