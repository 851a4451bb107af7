"""The admin account created on first start."""

from __future__ import annotations

import io

import pytest

from accounts.models import User
from accounts.services import admin_ensure
from testing.processes import environment, migrate, python


@pytest.mark.slow
@pytest.mark.django_db
def test_generated_password_is_printed_once_and_works(settings):
    settings.ADMIN_PASSWORD = ""
    out = io.StringIO()
    admin = admin_ensure(stream=out)
    assert admin is not None
    printed = out.getvalue().strip().rsplit(" ", 1)[-1]
    assert len(printed) >= 16
    assert admin.check_password(printed)
    assert admin.is_superuser
    assert admin.is_staff
    assert admin.is_admin
    assert admin.roles == ["admin", "user"]
    # A second start finds the superuser and neither creates nor prints anything.
    again = io.StringIO()
    assert admin_ensure(stream=again) is None
    assert again.getvalue() == ""
    assert User.objects.filter(is_superuser=True).count() == 1


@pytest.mark.django_db
def test_configured_admin_credentials_are_used(settings):
    settings.ADMIN_USERNAME, settings.ADMIN_EMAIL = "root", "Root@Example.com"
    settings.ADMIN_PASSWORD = "a very private phrase 42"
    out = io.StringIO()
    admin = admin_ensure(stream=out)
    assert admin is not None
    assert (admin.username, admin.email) == ("root", "root@example.com")
    assert admin.check_password("a very private phrase 42")
    assert "a very private phrase" not in out.getvalue()  # a configured password is never echoed


@pytest.mark.django_db
def test_no_admin_when_a_superuser_exists(settings):
    User.objects.create_superuser("boss", "boss@example.com", "x" * 20)
    assert admin_ensure(stream=io.StringIO()) is None
    assert not User.objects.filter(username=settings.ADMIN_USERNAME).exists()


@pytest.mark.slow
def test_migrate_then_server_start_creates_the_admin(tmp_path):
    """`manage.py migrate` and then starting the server (it imports config.wsgi) is enough."""
    env = environment(
        "REDIS_URL",
        "ADMIN_PASSWORD",
        DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        LOG_DIR=str(tmp_path),
    )
    migrate(env, timeout=120)
    first = python("-c", "import config.wsgi", env=env, timeout=60, check=True)
    assert "Created admin account 'admin' with the generated password:" in first.stderr
    second = python("-c", "import config.wsgi", env=env, timeout=60, check=True)
    assert "Created admin account" not in second.stderr
