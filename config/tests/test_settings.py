"""Start-up rules: production refuses unsafe settings, with errors that name the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _start(
    env: dict[str, str], code: str = "import django; django.setup()"
) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DJANGO_ENV", "DEBUG", "DATABASE_URL", "REDIS_URL"}
    }
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


def test_production_refuses_to_start_without_secret_key():
    result = _start({"DJANGO_ENV": "production"})
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_production_refuses_debug():
    result = _start({"DJANGO_ENV": "production", "SECRET_KEY": "x" * 60, "DEBUG": "true"})
    assert result.returncode != 0
    assert "DEBUG must not be on" in result.stderr


def test_malformed_number_names_the_variable():
    result = _start({"MAX_ACTIVE_SESSIONS": "ten"})
    assert result.returncode != 0
    assert "MAX_ACTIVE_SESSIONS must be an integer" in result.stderr


@pytest.mark.slow
def test_production_settings_pass_check_deploy():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
            "DJANGO_ENV": "production",
            "SECRET_KEY": "7f3Kq9Lm2Xv8Rt5Wn1Bc6Yh4Jd0Ps3Gz9Ua2Ee7Ti5Oo1Mm8Nn4Ll6Kk0Jj2Hh",
            "ALLOWED_HOSTS": "users.example.com",
            "JWT_ISSUER": "https://users.example.com",
            "FIELD_ENCRYPTION_KEYS": "bXVsdGktZmFjdG9yIHNlY3JldHMgYXQgcmVzdCAtIDE=",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("value", "expected"),
    [("", ["localhost", "127.0.0.1"]), ("a.example, b.example", ["a.example", "b.example"])],
)
def test_allowed_hosts_is_a_comma_list(value, expected):
    env = {"ALLOWED_HOSTS": value} if value else {}
    result = _start(
        env,
        "import django; django.setup(); from django.conf import settings; "
        "print(','.join(settings.ALLOWED_HOSTS))",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split(",") == expected
