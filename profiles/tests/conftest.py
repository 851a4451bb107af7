"""Fixtures of the profiles tests: a catalogue of the test's own (profile data); uploaded files
kept in a folder of the test's own (documents)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from profiles.llm_catalog import BUILT_IN, Catalog, catalog_load
from profiles.models import documents_storage

# --- Profile data ---------------------------------------------------------------------------------


@pytest.fixture
def built_in_catalog() -> dict[str, Any]:
    """The built-in catalogue as parsed data, to copy and change."""
    return copy.deepcopy(yaml.safe_load(BUILT_IN.read_text()))


@pytest.fixture
def use_catalog(settings: Any, tmp_path: Any) -> Iterator[Callable[..., Catalog]]:
    """Write a catalogue file, point LLM_CATALOG_FILE at it and load it, as a restart would."""

    def use(data: dict[str, Any], suffix: str = ".yaml") -> Catalog:
        path = tmp_path / f"catalog-{len(list(tmp_path.iterdir()))}{suffix}"
        path.write_text(json.dumps(data) if suffix == ".json" else yaml.safe_dump(data))
        settings.LLM_CATALOG_FILE = str(path)
        return catalog_load()

    yield use
    settings.LLM_CATALOG_FILE = ""
    catalog_load()


# --- Documents ------------------------------------------------------------------------------------


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
