"""MFA at every door with `MFA_REQUIRED_ROLES=admin` (the default): the administrators' API, restore,
social login, the commands; and the secrets kept out of the export (API.md, MFA)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import jwt
import pyotp
import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts import services
from accounts.models import AuditEvent, MFAChallenge, RecoveryCode, TOTPDevice, User
from accounts.tests.mfa_support import fresh_code, mfa_on
from accounts.tests.social_support import BOT_TOKEN, TELEGRAM, telegram_payload
from accounts.tests.support import PASSWORD, bearer, bearer_for
from notifications.models import Notification, OutboxEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]

LOGIN = "/api/v1/auth/login"
VERIFY = "/api/v1/auth/mfa/verify"
USERS = "/api/v1/users"

#: Every administrators' endpoint, with a body that would pass.
ADMIN_DOORS = [
    ("get", USERS, None),
    ("post", USERS, {"username": "made-by-admin", "email": "made@example.com", "password": PASSWORD}),
    ("get", "/api/v1/role-requests", None),
    ("post", "/api/v1/notifications/broadcast", {"title": "Hello", "body": "All"}),
]


def password_only_client(user: Any) -> Any:
    """A session opened with the password alone (as before MFA was set up for the account)."""
    response = APIClient().post(LOGIN, {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return bearer(response.json()["access"])


def amr(access: str) -> list[str]:
    return list(jwt.decode(access, options={"verify_signature": False})["amr"])


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_DOORS)
def test_the_administrators_endpoints_want_a_session_that_passed_mfa(method, path, body, admin_user):
    client = password_only_client(admin_user)  # no TOTP yet: the password logs in
    refused = getattr(client, method)(path, body, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "mfa_required"
    assert client.get("/api/v1/users/me").status_code == 200  # the user can still log in and enroll

    with_mfa = bearer_for(admin_user)  # TOTP on, the password, then the code
    assert "mfa" in amr(with_mfa.tokens["access"])
    assert getattr(with_mfa, method)(path, body, format="json").status_code in {200, 201, 202}


def test_a_superuser_without_the_role_is_an_administrator_and_needs_it_too(root):
    client = password_only_client(root)
    assert client.get(USERS).json()["code"] == "mfa_required"
    assert bearer_for(root).get(USERS).status_code == 200


def test_without_the_setting_a_password_session_acts_as_administrator(admin_user, settings):
    settings.MFA_REQUIRED_ROLES = []
    client = password_only_client(admin_user)
    assert client.get(USERS).status_code == 200
    assert client.get("/api/v1/auth/mfa").json()["required"] is False


def test_ordinary_users_are_refused_as_before(auth_client):
    refused = auth_client.get(USERS)
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")


def test_an_administrator_enrolls_with_the_session_it_has_then_logs_in_again_with_the_code(admin_user):
    client = password_only_client(admin_user)
    assert client.get("/api/v1/auth/mfa").json() == {
        "totp": False,
        "recovery_codes_left": 0,
        "required": True,
    }
    secret = client.post("/api/v1/auth/mfa/totp", {"current_password": PASSWORD}, format="json").json()[
        "secret"
    ]
    assert (
        client.post(
            "/api/v1/auth/mfa/totp/confirm", {"code": pyotp.TOTP(secret).now()}, format="json"
        ).status_code
        == 200
    )
    # Enrolling does not make this session one that passed MFA: it logs in again.
    assert client.get(USERS).json()["code"] == "mfa_required"
    assert bearer_for(admin_user).get(USERS).status_code == 200


def test_an_administrator_cannot_turn_mfa_off_while_the_role_demands_it(admin_user):
    client = bearer_for(admin_user)
    response = client.delete(
        "/api/v1/auth/mfa/totp", {"current_password": PASSWORD, "code": fresh_code(admin_user)}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (403, "mfa_required_by_role")
    assert TOTPDevice.objects.get(user=admin_user).confirmed_at is not None


def test_the_role_requests_of_everyone_are_not_shown_to_a_session_without_mfa(admin_user, user):
    services.role_request_create(user_id=user.id, role="moderator", reason="please")
    refused = password_only_client(admin_user).get("/api/v1/role-requests")
    assert refused.json()["code"] == "mfa_required"
    assert len(bearer_for(admin_user).get("/api/v1/role-requests").json()["results"]) == 1


# --- restore and social login ---------------------------------------------------------------------------


def test_restore_of_an_account_with_mfa_asks_for_the_code_then_restores_and_logs_in(user):
    secret = mfa_on(user)
    services.user_delete_self(user_id=user.id, password=PASSWORD, session_id=None)
    client = APIClient()
    wrong = client.post(
        "/api/v1/auth/restore", {"username": user.username, "password": "nope"}, format="json"
    )
    assert wrong.status_code == 401
    asked = client.post(
        "/api/v1/auth/restore", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert asked.status_code == 403
    assert asked.json()["code"] == "mfa_required"
    assert User.objects.get(id=user.id).deleted_at is not None  # nothing restored before the code
    assert MFAChallenge.objects.get(user=user).purpose == "restore"

    done = client.post(
        VERIFY, {"mfa_token": asked.json()["mfa_token"], "code": pyotp.TOTP(secret).now()}, format="json"
    )
    assert done.status_code == 200, done.content
    restored = User.objects.get(id=user.id)
    assert (restored.deleted_at, restored.is_active) == (None, True)
    assert OutboxEvent.objects.filter(key="user_restored").count() == 1
    assert amr(done.json()["access"]) == ["pwd", "otp", "mfa"]


def test_a_login_token_cannot_restore_an_account_deleted_since(user):
    secret = mfa_on(user)
    token = (
        APIClient()
        .post(LOGIN, {"username": user.username, "password": PASSWORD}, format="json")
        .json()["mfa_token"]
    )
    services.user_soft_delete(user_id=user.id, actor_id=None)
    response = APIClient().post(VERIFY, {"mfa_token": token, "code": pyotp.TOTP(secret).now()}, format="json")
    assert response.status_code == 401
    assert User.objects.get(id=user.id).deleted_at is not None


def test_a_social_login_of_an_account_with_mfa_asks_for_the_code(settings):
    settings.TELEGRAM_BOT_TOKEN = BOT_TOKEN
    client = APIClient()
    first = client.post(TELEGRAM, telegram_payload(), format="json")
    assert first.status_code == 200
    user = User.objects.get(id=jwt.decode(first.json()["access"], options={"verify_signature": False})["sub"])
    secret = mfa_on(user)

    asked = client.post(TELEGRAM, telegram_payload(first_name="Ivan again"), format="json")
    assert asked.status_code == 403
    assert asked.json()["code"] == "mfa_required"
    assert set(asked.json()["methods"]) == {"totp", "recovery_code"}
    done = client.post(
        VERIFY, {"mfa_token": asked.json()["mfa_token"], "code": pyotp.TOTP(secret).now()}, format="json"
    )
    assert done.status_code == 200
    assert amr(done.json()["access"]) == ["telegram", "otp", "mfa"]


# --- the commands: shell access, no second factor -------------------------------------------------------


def test_mfa_reset_removes_a_users_mfa_audited_and_told(user):
    mfa_on(user)
    RecoveryCode.objects.create(user=user, code_hash="0" * 64)
    out = StringIO()
    call_command("mfa_reset", user.username, stdout=out)
    assert "removed" in out.getvalue()
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not RecoveryCode.objects.filter(user=user).exists()
    row = AuditEvent.objects.get(user=user, kind="mfa_disabled")
    assert (row.actor_id, row.detail) == (None, {"by": "command"})
    assert OutboxEvent.objects.get(key="mfa_disabled").payload["by"] == "command"
    note = Notification.objects.get(user=user, data__event="mfa_disabled")
    assert "administrator" in note.body.lower()
    assert (
        APIClient().post(LOGIN, {"username": user.username, "password": PASSWORD}, format="json").status_code
        == 200
    )

    again = StringIO()
    call_command("mfa_reset", user.email, stdout=again)
    assert "had no two-factor authentication" in again.getvalue()
    with pytest.raises(CommandError, match="No user"):
        call_command("mfa_reset", "nobody-here")


def test_an_administrator_whose_mfa_was_reset_enrolls_again(admin_user):
    bearer_for(admin_user)  # TOTP on
    call_command("mfa_reset", admin_user.username, stdout=StringIO())
    client = password_only_client(admin_user)
    assert client.get(USERS).json()["code"] == "mfa_required"
    assert client.get("/api/v1/auth/mfa").json()["required"] is True


def test_the_commands_act_for_an_administrator_without_a_second_factor(user):
    call_command("set_roles", user.username, "user", "moderator", stdout=StringIO())
    assert User.objects.get(id=user.id).roles == ["moderator", "user"]


# --- the export ---------------------------------------------------------------------------------------------


def test_the_export_says_whether_mfa_is_on_and_the_codes_left_and_holds_no_secret(user):
    client = bearer_for(user)
    secret = client.post("/api/v1/auth/mfa/totp", {"current_password": PASSWORD}, format="json").json()[
        "secret"
    ]
    codes = client.post(
        "/api/v1/auth/mfa/totp/confirm", {"code": pyotp.TOTP(secret).now()}, format="json"
    ).json()["recovery_codes"]
    export = client.get("/api/v1/users/me/export")
    assert export.json()["mfa"] == {"totp": True, "recovery_codes_left": 10}
    text = export.content.decode()
    stored = TOTPDevice.objects.get(user=user).secret
    hashes = list(RecoveryCode.objects.filter(user=user).values_list("code_hash", flat=True))
    for secret_value in [secret, stored, *codes, *(c.replace("-", "") for c in codes), *hashes]:
        assert secret_value not in text
    token_hashes = MFAChallenge.objects.filter(user=user).values_list("token_hash", flat=True)
    assert not any(h in text for h in token_hashes)
