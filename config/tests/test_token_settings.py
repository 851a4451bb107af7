"""`JWT_ISSUER`, `JWT_AUDIENCE` and `EVENTS_SOURCE` (issue 25): required where API.md says, checked
at start-up with errors that name the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRINT = (
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.JWT_ISSUER, settings.JWT_AUDIENCE, settings.EVENTS_SOURCE)"
)


def start(env: dict[str, str], code: str = PRINT) -> subprocess.CompletedProcess[str]:
    dropped = {"SECRET_KEY", "DJANGO_ENV", "DEBUG", "DATABASE_URL", "REDIS_URL", "JWT_ISSUER", "JWT_AUDIENCE",
               "EVENTS_SOURCE"}  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    clean.update({"DJANGO_SETTINGS_MODULE": "config.settings", **env})
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


pytestmark = pytest.mark.slow


def test_the_defaults_are_api_md_s():
    result = start({})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["http://127.0.0.1:8000", "platform", "/user-service"]


#: What production requires besides the issuer, so that only the issuer is missing.
PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "k" * 60,
    "FIELD_ENCRYPTION_KEYS": "aGVyZSBhcmUgdGhpcnR5LXR3byBieXRlcyBvZiBrZXk=",
}


def test_production_refuses_to_start_without_an_issuer():
    result = start(PRODUCTION)
    assert result.returncode != 0
    assert "JWT_ISSUER is required with DJANGO_ENV=production" in result.stderr


def test_production_starts_with_one():
    result = start({**PRODUCTION, "JWT_ISSUER": "https://users.example.com"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3] == "https://users.example.com"


@pytest.mark.parametrize(
    "issuer", ["users.example.com", "ftp://users.example.com", "https://users.example.com/?a=1", "https://#x"]
)
def test_an_issuer_that_is_no_url_without_query_or_fragment_names_the_variable(issuer):
    result = start({"JWT_ISSUER": issuer})
    assert result.returncode != 0
    assert "JWT_ISSUER must be an http(s) URL without a query or fragment" in result.stderr


@pytest.mark.parametrize("name", ["JWT_AUDIENCE", "EVENTS_SOURCE"])
def test_an_empty_audience_or_source_names_the_variable(name):
    result = start({name: " "})
    assert result.returncode != 0
    assert f"{name} must not be empty" in result.stderr
