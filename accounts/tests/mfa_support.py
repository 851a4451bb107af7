"""What the MFA tests (and the fixtures of administrators) need: TOTP on for a user, the code an
authenticator app would show, and a login through the second factor."""

from __future__ import annotations

import time
from typing import Any

import pyotp
from rest_framework.test import APIClient

from accounts import field_encryption, totp
from accounts.models import TOTPDevice

LOGIN = "/api/v1/auth/login"
VERIFY = "/api/v1/auth/mfa/verify"
#: Where the `clock` fixture (accounts/tests/conftest.py) holds the service's TOTP clock: the middle
#: of a time step, so a code of "now" and of one step either side are unambiguous.
NOW = 1_900_000_015.0


def mfa_on(user: Any, secret: str | None = None) -> str:
    """Turn TOTP on for `user` as a confirmed enrollment leaves it (no recovery codes); the secret."""
    secret = secret or pyotp.random_base32(length=32)
    TOTPDevice.objects.update_or_create(
        user=user,
        defaults={"secret": field_encryption.encrypt(secret), "confirmed_at": "2026-01-01T00:00:00Z"},
    )
    if hasattr(user, "_state"):
        user._state.fields_cache.pop("totp_device", None)
    return secret


def device_secret(user: Any) -> str:
    return field_encryption.decrypt(TOTPDevice.objects.get(user=user).secret)


def code(secret: str, *, steps: int = 0, now: float | None = None) -> str:
    """The code of the current step (`steps` before or after it), as pyotp computes it."""
    return pyotp.TOTP(secret).at(now if now is not None else time.time(), counter_offset=steps)


def fresh_code(user: Any) -> str:
    """A code of the user's device that is not a replay: the replay guard is forgotten first.

    For the fixtures that log administrators in many times within one 30-second step; the tests
    of the guard itself never call it.
    """
    TOTPDevice.objects.filter(user=user).update(last_used_step=None)
    return code(device_secret(user))


def mfa_login_tokens(user: Any, password: str, **extra: Any) -> dict[str, Any]:
    """Password, then the code, over the API: the token pair of a session whose `amr` has `mfa`."""
    client = APIClient()
    first = client.post(LOGIN, {"username": user.username, "password": password}, format="json", **extra)
    assert first.status_code == 403, first.content
    assert first.json()["code"] == "mfa_required"
    second = client.post(
        VERIFY, {"mfa_token": first.json()["mfa_token"], "code": fresh_code(user)}, format="json", **extra
    )
    assert second.status_code == 200, second.content
    return dict(second.json())


def step_now() -> int:
    return totp.current_step()


def admin_session_mfa_passed(client: Any, user: Any) -> None:
    """Mark a test client's admin session as past the second factor (what `force_login` skips)."""
    from accounts.admin_mfa import SESSION_KEY

    session = client.session
    session[SESSION_KEY] = {"user": str(user.pk), "passed": True, "method": "forced_by_test"}
    session.save()


def assert_admin_at_once(client: Any, settings: Any) -> None:
    """A role granted to a live session is seen at once: the administrators' endpoints answer
    `mfa_required` (not `permission_denied`) to its session without MFA while `MFA_REQUIRED_ROLES`
    names `admin`, and let it in without the setting."""
    refused = client.get("/api/v1/users")
    assert (refused.status_code, refused.json()["code"]) == (403, "mfa_required"), refused.content
    settings.MFA_REQUIRED_ROLES = []
    assert client.get("/api/v1/users").status_code == 200
