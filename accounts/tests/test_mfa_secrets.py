"""The second factor's secrets at rest (API.md, MFA): TOTP secrets encrypted with
`FIELD_ENCRYPTION_KEYS` (rotating them keeps every device working), recovery codes as keyed hashes,
and neither they nor `mfa_token`s in a database dump, the export, the logs, the admin pages or the
cache."""

from __future__ import annotations

import ast
import logging
import pickle
from io import StringIO
from typing import Any

import pyotp
import pytest
from cryptography.fernet import Fernet
from django.contrib import admin
from django.core.cache import cache
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts import field_encryption
from accounts.models import MFAChallenge, RecoveryCode, TOTPDevice
from accounts.tests.support import PASSWORD, bearer_for
from testing.processes import environment, python

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]

LOGIN = "/api/v1/auth/login"
VERIFY = "/api/v1/auth/mfa/verify"
KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def code(secret: str, at: float) -> str:
    return pyotp.TOTP(secret).at(at)


def enroll(user: Any, at: float) -> tuple[Any, str, list[str]]:
    client = bearer_for(user)
    secret = client.post("/api/v1/auth/mfa/totp", {"current_password": PASSWORD}, format="json").json()[
        "secret"
    ]
    confirmed = client.post("/api/v1/auth/mfa/totp/confirm", {"code": code(secret, at)}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    return client, secret, confirmed.json()["recovery_codes"]


def login_with_code(user: Any, secret: str, at: float) -> Any:
    asked = APIClient().post(LOGIN, {"username": user.username, "password": PASSWORD}, format="json")
    assert asked.status_code == 403, asked.content
    return APIClient().post(
        VERIFY, {"mfa_token": asked.json()["mfa_token"], "code": code(secret, at)}, format="json"
    )


def the_flow(user: Any, clock: Any) -> dict[str, Any]:
    """Everything a user does with MFA; what must never be seen again."""
    client, secret, codes = enroll(user, clock.at)
    clock.at += 30
    asked = APIClient().post(LOGIN, {"username": user.username, "password": PASSWORD}, format="json")
    token = asked.json()["mfa_token"]
    assert (
        APIClient()
        .post(VERIFY, {"mfa_token": token, "code": code(secret, clock.at)}, format="json")
        .status_code
        == 200
    )
    second = APIClient().post(LOGIN, {"username": user.username, "password": PASSWORD}, format="json")
    second_token = second.json()["mfa_token"]
    assert (
        APIClient()
        .post(VERIFY, {"mfa_token": second_token, "recovery_code": codes[0]}, format="json")
        .status_code
        == 200
    )
    bad = (
        APIClient()
        .post(LOGIN, {"username": user.username, "password": PASSWORD}, format="json")
        .json()["mfa_token"]
    )
    APIClient().post(VERIFY, {"mfa_token": bad, "recovery_code": "zzzz-zzzz-zzzz"}, format="json")
    client.get("/api/v1/users/me")
    client.get("/api/v1/auth/mfa")
    return {
        "secret": secret,
        "stored secret": TOTPDevice.objects.get(user=user).secret,
        "mfa tokens": [token, second_token, bad],
        "recovery codes": [*codes, *(c.replace("-", "") for c in codes)],
        "recovery hashes": list(RecoveryCode.objects.filter(user=user).values_list("code_hash", flat=True)),
    }


def secrets_in(text: str, secrets: dict[str, Any]) -> list[str]:
    found = []
    for name, values in secrets.items():
        for value in values if isinstance(values, list) else [values]:
            if value and value in text:
                found.append(f"{name}: {value}")
    return found


# --- the database ---------------------------------------------------------------------------------------


def test_a_database_dump_shows_ciphertext_only(user, clock):
    secrets = the_flow(user, clock)
    stored = TOTPDevice.objects.get(user=user).secret
    assert stored.startswith("gAAAAA")  # a Fernet token
    assert field_encryption.decrypt(stored) == secrets["secret"]
    dump = StringIO()
    call_command("dumpdata", "accounts", stdout=dump)
    plain = {k: v for k, v in secrets.items() if k not in {"stored secret", "recovery hashes"}}
    assert secrets_in(dump.getvalue(), plain) == []
    assert secrets["secret"].lower() not in dump.getvalue().lower()


def test_the_challenge_keeps_only_the_tokens_hash(user, clock):
    secrets = the_flow(user, clock)
    rows = " ".join(str(row) for row in MFAChallenge.objects.values_list())
    assert secrets_in(rows, {"mfa tokens": secrets["mfa tokens"]}) == []


# --- logs, cache, admin ---------------------------------------------------------------------------------


def test_no_secret_code_or_token_in_the_logs(user, clock, caplog):
    caplog.set_level(logging.DEBUG)
    secrets = the_flow(user, clock)
    call_command("publish_events", stdout=StringIO())  # without Kafka, the events go to the log
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert "mfa_enabled" in logged or "recovery_code_used" in logged  # the events were logged
    assert secrets_in(logged, secrets) == []


def _cached_entries() -> list[str]:
    """Every key and value the cache holds, as text (the in-process cache, or Redis)."""
    backend: Any = cache
    entries = []
    if hasattr(backend, "_cache"):  # LocMemCache: pickled values
        for key, value in list(backend._cache.items()):
            entries.append(f"{key} {value!r} {pickle.loads(value)!r}")  # noqa: S301 (our own cache)
    else:
        client = backend.client.get_client()
        for key in client.keys("*"):
            entries.append(f"{key!r} {client.dump(key)!r} {backend.get(key.decode().split(':', 2)[-1])!r}")
    return entries


def test_no_secret_code_or_token_in_the_cache(user, clock):
    secrets = the_flow(user, clock)
    entries = _cached_entries()
    assert entries, "the flow cached nothing: the check would prove nothing"
    assert secrets_in("\n".join(entries), secrets) == []


def test_the_admin_shows_whether_mfa_is_on_and_never_a_secret(user, clock, superuser_client):
    secrets = the_flow(user, clock)
    page = superuser_client.get(f"/admin/accounts/user/{user.id}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "On (TOTP), 9 recovery code(s) left" in text
    assert secrets_in(text, secrets) == []
    for model in (TOTPDevice, RecoveryCode, MFAChallenge):
        assert model not in admin.site._registry  # no page lists them
    for path in ("/admin/", "/admin/accounts/user/", "/admin/accounts/auditevent/"):
        listing = superuser_client.get(path)
        assert listing.status_code == 200
        assert secrets_in(listing.content.decode(), secrets) == []


# --- key rotation ---------------------------------------------------------------------------------------


def test_rotating_the_keys_keeps_every_device_working(user, clock, settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    _, secret, _ = enroll(user, clock.at)
    under_a = TOTPDevice.objects.get(user=user).secret
    Fernet(KEY_A.encode()).decrypt(under_a.encode())

    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]  # a new key first: the old secret still opens
    clock.at += 30
    assert login_with_code(user, secret, clock.at).status_code == 200

    out = StringIO()
    call_command("mfa_reencrypt", stdout=out)
    assert "1 of 1 TOTP secret(s) re-encrypted" in out.getvalue()
    under_b = TOTPDevice.objects.get(user=user).secret
    assert Fernet(KEY_B.encode()).decrypt(under_b.encode()).decode() == secret

    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]  # the old key dropped
    clock.at += 30
    assert login_with_code(user, secret, clock.at).status_code == 200


def test_a_secret_no_key_opens_is_a_503_not_a_wrong_code(user, clock, settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    _, secret, _ = enroll(user, clock.at)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]  # KEY_A dropped before re-encrypting
    clock.at += 30
    response = login_with_code(user, secret, clock.at)
    assert (response.status_code, response.json()["code"]) == (503, "mfa_unavailable")
    assert response["Retry-After"]
    with pytest.raises(CommandError, match="opens with no key"):
        call_command("mfa_reencrypt", stdout=StringIO())


# --- the settings -------------------------------------------------------------------------------------------


def _settings_start(**env: str) -> Any:
    code = "import django; django.setup(); from django.conf import settings; print(settings.FIELD_ENCRYPTION_KEYS)"
    return python(
        "-c",
        code,
        env=environment("FIELD_ENCRYPTION_KEYS", "DJANGO_ENV", "DATABASE_URL", "REDIS_URL", **env),
    )


@pytest.mark.slow
def test_production_refuses_to_start_without_field_encryption_keys():
    result = _settings_start(
        DJANGO_ENV="production", SECRET_KEY="s" * 60, JWT_ISSUER="https://users.example.com"
    )
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS is required with DJANGO_ENV=production" in result.stderr


@pytest.mark.slow
def test_a_malformed_key_names_the_variable_and_its_position():
    result = _settings_start(FIELD_ENCRYPTION_KEYS=f"{KEY_A},not-a-key")
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS: key 2 is not a Fernet key" in result.stderr


@pytest.mark.slow
def test_development_derives_a_key_from_the_secret_key():
    first = _settings_start(SECRET_KEY="one secret key " * 4)
    again = _settings_start(SECRET_KEY="one secret key " * 4)
    other = _settings_start(SECRET_KEY="another secret key " * 4)
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout != other.stdout
    Fernet(ast.literal_eval(first.stdout.strip())[0])
