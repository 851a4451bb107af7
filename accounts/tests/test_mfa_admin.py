"""The Django admin's second factor (API.md, MFA; accounts/admin_mfa.py): the code after the
password on its own page, through the API's services (one lockout count, five codes per login);
the enrollment walk for a staff user without TOTP; no page before it; the reset of a user's MFA."""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts import services
from accounts.admin_mfa import SESSION_KEY
from accounts.models import AuditEvent, LoginLockout, MFAChallenge, RecoveryCode, TOTPDevice, User
from accounts.tests.factories import UserFactory
from accounts.tests.mfa_support import NOW, mfa_on
from accounts.tests.support import PASSWORD, committing
from notifications.models import OutboxEvent

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/accounts/user/"


@pytest.fixture
def browser(django_capture_on_commit_callbacks: Any) -> Client:
    return committing(Client(), django_capture_on_commit_callbacks)


@pytest.fixture
def staff() -> Any:
    return UserFactory(username="office", password=PASSWORD, roles=["user", "admin"])


def code(secret: str, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(NOW, counter_offset=steps)


def password_step(client: Client, user: Any, password: str = PASSWORD) -> Any:
    return client.post(
        LOGIN, {"username": user.username, "password": password, "next": "/admin/accounts/user/"}
    )


def failures(user: Any) -> int:
    row = LoginLockout.objects.filter(key=f"user:{user.id}").first()
    return row.failures if row else 0


def test_the_code_is_asked_after_the_password_and_no_page_opens_before(browser, staff, clock):
    secret = mfa_on(staff)
    response = password_step(browser, staff)
    assert response.status_code == 302
    assert response["Location"] == "/admin/mfa/?next=%2Fadmin%2Faccounts%2Fuser%2F"
    for path in ("/admin/", "/admin/accounts/user/", f"/admin/accounts/user/{staff.id}/change/"):
        blocked = browser.get(path)
        assert blocked.status_code == 302, path
        assert blocked["Location"].startswith("/admin/login/")
    assert browser.get("/admin/login/?next=/admin/")["Location"].startswith("/admin/mfa/")
    page = browser.get(response["Location"])
    assert page.status_code == 200
    assert 'name="code"' in page.content.decode()

    passed = browser.post("/admin/mfa/", {"code": code(secret), "next": "/admin/accounts/user/"})
    assert (passed.status_code, passed["Location"]) == (302, "/admin/accounts/user/")
    assert browser.get("/admin/accounts/user/").status_code == 200
    row = AuditEvent.objects.get(user=staff, kind="login")
    assert row.detail["door"] == "admin"
    assert row.detail["amr"] == ["pwd", "otp", "mfa"]


def test_a_wrong_code_counts_toward_the_accounts_lockout_and_the_page_says_so(browser, staff, clock):
    secret = mfa_on(staff)
    password_step(browser, staff)
    wrong = browser.post("/admin/mfa/", {"code": code(secret, 7)})
    assert wrong.status_code == 200
    assert "not correct" in wrong.content.decode()
    assert failures(staff) == 1
    assert browser.get("/admin/").status_code == 302


def test_five_wrong_codes_send_the_browser_back_to_the_password(browser, staff, clock):
    secret = mfa_on(staff)
    password_step(browser, staff)
    for _ in range(4):
        assert browser.post("/admin/mfa/", {"code": code(secret, 7)}).status_code == 200
    fifth = browser.post("/admin/mfa/", {"code": code(secret, 7)})
    assert fifth.status_code == 200  # the form says the code is wrong; the challenge is spent
    after = browser.post("/admin/mfa/", {"code": code(secret)})
    assert (after.status_code, after["Location"]) == (302, "/admin/login/")
    assert "_auth_user_id" not in browser.session  # logged out: the password again
    assert TOTPDevice.objects.get(user=staff).last_used_step is None  # the right code was not spent


def test_the_admin_code_page_and_the_api_share_one_lockout(browser, staff, clock, settings):
    settings.LOGIN_MAX_ATTEMPTS = 3
    secret = mfa_on(staff)
    password_step(browser, staff)
    for _ in range(3):
        browser.post("/admin/mfa/", {"code": code(secret, 7)})
    locked = browser.post("/admin/mfa/", {"code": code(secret)})
    assert locked["Location"] == "/admin/login/"
    api = APIClient().post(
        "/api/v1/auth/login", {"username": staff.username, "password": PASSWORD}, format="json"
    )
    assert (api.status_code, api.json()["code"]) == (429, "locked_out")


def test_a_recovery_code_works_on_the_admin_page(browser, staff, clock):
    mfa_on(staff)
    codes = services.mfa_codes.recovery_codes_issue(user_id=staff.id)
    password_step(browser, staff)
    passed = browser.post("/admin/mfa/", {"code": codes[0]})
    assert passed.status_code == 302
    assert passed["Location"] == "/admin/"
    assert RecoveryCode.objects.filter(user=staff, used_at__isnull=False).count() == 1


def test_a_staff_user_without_totp_is_walked_through_enrollment_first(browser, staff, clock):
    response = password_step(browser, staff)
    assert response["Location"].startswith("/admin/mfa/")
    walk = browser.get(response["Location"])
    assert (walk.status_code, walk["Location"]) == (
        302,
        "/admin/mfa/setup/?next=%2Fadmin%2Faccounts%2Fuser%2F",
    )
    page = browser.get(walk["Location"]).content.decode()
    assert "<svg" in page  # the QR code, drawn on the page
    secret = re.search(r'id="totp-secret">([A-Z2-7]{32})<', page).group(1)
    assert TOTPDevice.objects.get(user=staff).confirmed_at is None
    assert browser.get("/admin/").status_code == 302

    wrong = browser.post("/admin/mfa/setup/", {"code": code(secret, 7), "next": "/admin/accounts/user/"})
    assert "not correct" in wrong.content.decode()
    assert secret in wrong.content.decode()  # the same secret again: the app has it already

    done = browser.post("/admin/mfa/setup/", {"code": code(secret), "next": "/admin/accounts/user/"})
    assert done.status_code == 200
    shown = re.findall(r"<code>([a-z2-9-]{14})</code>", done.content.decode())
    assert len(shown) == 10
    assert TOTPDevice.objects.get(user=staff).confirmed_at is not None
    assert browser.get("/admin/accounts/user/").status_code == 200
    assert OutboxEvent.objects.filter(key="mfa_enabled").count() == 1
    # The next login asks for the code.
    browser.post("/admin/logout/")
    again = Client()
    assert password_step(again, staff)["Location"].startswith("/admin/mfa/")
    assert again.get("/admin/mfa/").status_code == 200  # the code page, not the walk


def test_the_first_start_administrator_enrolls_at_its_first_admin_login(browser, settings, clock):
    settings.ADMIN_USERNAME, settings.ADMIN_PASSWORD = "first-admin", "First-Admin-Pass-4471"
    User.objects.filter(is_superuser=True).delete()
    admin_user = services.admin_ensure()
    assert admin_user is not None
    response = browser.post(LOGIN, {"username": "first-admin", "password": "First-Admin-Pass-4471"})
    assert browser.get(response["Location"])["Location"].startswith("/admin/mfa/setup/")


def test_staff_without_totp_go_straight_in_when_no_role_demands_it(browser, staff, settings):
    settings.MFA_REQUIRED_ROLES = []
    response = password_step(browser, staff)
    assert response["Location"] == "/admin/accounts/user/"
    assert browser.get("/admin/accounts/user/").status_code == 200
    assert not MFAChallenge.objects.exists()


def test_a_session_without_the_mark_does_not_pass(staff, client):
    """Fail closed: a session logged in by any other way (or from before) opens no page."""
    client.force_login(staff)
    session = client.session
    del session[SESSION_KEY]
    session.save()
    assert client.get("/admin/").status_code == 302
    start = client.get("/admin/mfa/")
    assert (start.status_code, start["Location"]) == (302, "/admin/login/")  # no login waits: the password
    assert "_auth_user_id" not in client.session


def test_the_login_expires_after_mfa_token_seconds(browser, staff, clock):
    secret = mfa_on(staff)
    password_step(browser, staff)
    MFAChallenge.objects.update(expires_at="2000-01-01T00:00:00Z")
    expired = browser.post("/admin/mfa/", {"code": code(secret)})
    assert expired["Location"] == "/admin/login/"


def test_cancel_logs_out(browser, staff, clock):
    mfa_on(staff)
    password_step(browser, staff)
    assert browser.post("/admin/mfa/cancel/")["Location"] == "/admin/login/"
    assert "_auth_user_id" not in browser.session


def test_an_open_redirect_is_not_followed(browser, staff, clock):
    secret = mfa_on(staff)
    password_step(browser, staff)
    passed = browser.post("/admin/mfa/", {"code": code(secret), "next": "https://evil.example/"})
    assert passed["Location"] == "/admin/"


# --- the reset of a user's MFA, behind the administrator's own ----------------------------------------


def admin_with_mfa(browser: Client, staff: Any) -> None:
    secret = mfa_on(staff)
    password_step(browser, staff)
    assert browser.post("/admin/mfa/", {"code": code(secret)}).status_code == 302


def test_an_administrator_resets_a_users_mfa_from_the_users_page(browser, staff, clock):
    alice = UserFactory(username="alice")
    mfa_on(alice)
    services.mfa_codes.recovery_codes_issue(user_id=alice.id)
    admin_with_mfa(browser, staff)
    page = browser.get(f"/admin/accounts/user/{alice.id}/change/").content.decode()
    assert "On (TOTP), 10 recovery code(s) left" in page
    assert f"/admin/mfa/reset/{alice.id}/" in page
    confirm = browser.get(f"/admin/mfa/reset/{alice.id}/")
    assert confirm.status_code == 200
    done = browser.post(f"/admin/mfa/reset/{alice.id}/")
    assert done["Location"] == f"/admin/accounts/user/{alice.id}/change/"
    assert not TOTPDevice.objects.filter(user=alice).exists()
    row = AuditEvent.objects.get(user=alice, kind="mfa_disabled")
    assert (row.actor_id, row.detail) == (staff.id, {"by": "administrator"})
    assert OutboxEvent.objects.get(key="mfa_disabled").payload["by"] == "administrator"


def test_the_reset_needs_the_administrators_own_second_factor(browser, staff, settings):
    settings.MFA_REQUIRED_ROLES = []
    alice = UserFactory(username="alice")
    mfa_on(alice)
    password_step(browser, staff)  # in, without MFA: no role demands it
    assert browser.get("/admin/accounts/user/").status_code == 200
    refused = browser.post(f"/admin/mfa/reset/{alice.id}/")
    assert refused["Location"] == f"/admin/accounts/user/{alice.id}/change/"
    assert TOTPDevice.objects.filter(user=alice).exists()


def test_the_reset_page_is_the_admins_only():
    anonymous = Client()
    response = anonymous.post(f"/admin/mfa/reset/{UserFactory().id}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
