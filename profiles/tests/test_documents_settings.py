"""The documents' settings (API.md → Configuration): names and defaults, and the storage backend
chosen by a setting, so a deployment moves files to an object store without a code change."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from testing.processes import environment, python

ROOT = Path(__file__).resolve().parents[2]
NAMES = [
    "UPLOAD_MAX_BYTES",
    "DOCUMENT_MAX_TEXT_CHARS",
    "STORAGE_TIME_RESUME",
    "STORAGE_TIME_REQUIREMENTS",
    "PROCESSING_RATE_LIMIT",
    "PROCESSING_BLOCK_SECONDS",
]


def _run(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    clean = environment(*NAMES, "DATABASE_URL", "REDIS_URL", DJANGO_SETTINGS_MODULE="config.settings", **env)
    return python("-c", "import django; django.setup()\n" + code, env=clean, timeout=60)


@pytest.mark.slow
def test_defaults_are_the_contracts():
    code = f"from django.conf import settings; import json; print(json.dumps([getattr(settings, n) for n in {NAMES!r}]))"
    result = _run({}, code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [5242880, 200000, 3600, 259200, 5, 30]


@pytest.mark.slow
def test_a_malformed_value_names_the_variable():
    result = _run({"UPLOAD_MAX_BYTES": "5MB"}, "")
    assert result.returncode != 0
    assert "UPLOAD_MAX_BYTES must be an integer" in result.stderr


@pytest.mark.slow
def test_the_storage_backend_is_a_setting(tmp_path):
    code = (
        "from django.core.files.base import ContentFile\n"
        "from profiles.models import Resume\n"
        "field = Resume._meta.get_field('file')\n"
        "name = field.storage.save('resume/x.txt', ContentFile(b'hello'))\n"
        "print(type(field.storage._wrapped).__name__, field.storage.open(name).read().decode())\n"
    )
    result = _run({"DOCUMENT_STORAGE_BACKEND": "django.core.files.storage.InMemoryStorage"}, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["InMemoryStorage", "hello"]
    assert not (ROOT / "media" / "documents" / "resume" / "x.txt").exists()

    folder = tmp_path / "files"
    result = _run({"DOCUMENT_STORAGE_DIR": str(folder)}, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["FileSystemStorage", "hello"]
    assert (folder / "resume" / "x.txt").read_bytes() == b"hello"
