"""The Django admin's second factor in a real headless Chromium (API.md, MFA): the password and then
the code; and the enrollment walk of a staff user without TOTP, reading the secret from the page
(no QR code is scanned) and computing the code with pyotp as an authenticator app would.
A screenshot of every step goes to `artifacts/screenshots/mfa/`."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest

from accounts.models import AuditEvent, RecoveryCode, TOTPDevice
from accounts.tests.factories import UserFactory
from accounts.tests.mfa_support import code, mfa_on
from accounts.tests.support import PASSWORD
from testing.browser import SCREENSHOTS, browser_page, needs_chromium

pytestmark = [pytest.mark.slow, needs_chromium]

SHOTS = SCREENSHOTS / "mfa"


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API runs an event loop in this thread; Django would then refuse ORM calls."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _browse(live_server: Any, prefix: str, steps: Any) -> None:
    with browser_page(SHOTS, prefix, width=1100) as (page, shot):
        steps(page, shot, live_server.url)


@pytest.mark.django_db(transaction=True)
def test_an_administrator_types_the_password_then_the_code(live_server):
    from playwright.sync_api import expect

    admin = UserFactory(username="mfa-admin", password=PASSWORD, roles=["user", "admin"])
    secret = mfa_on(admin)

    def steps(page: Any, shot: Any, base: str) -> None:
        page.goto(f"{base}/admin/accounts/user/")
        page.wait_for_url("**/admin/login/**")
        page.fill("#id_username", admin.username)
        page.fill("#id_password", PASSWORD)
        shot("password")
        page.locator("input[type=submit]").click()

        page.wait_for_url("**/admin/mfa/**")
        expect(page.locator("#content-main")).to_contain_text("Enter the code your authenticator app shows")
        page.goto(f"{base}/admin/accounts/user/")  # no page before the code: back to its page
        page.wait_for_url("**/admin/mfa/**")
        page.fill("#id_code", "000000" if code(secret) != "000000" else "111111")
        page.locator("input[type=submit][value=Verify]").click()
        expect(page.locator(".errornote")).to_contain_text("not correct")
        shot("wrong-code")

        page.fill("#id_code", code(secret))
        shot("code")
        page.locator("input[type=submit][value=Verify]").click()
        page.wait_for_url("**/admin/accounts/user/")
        expect(page.locator("#result_list")).to_contain_text(admin.username)
        shot("in")

    _browse(live_server, "login", steps)
    assert AuditEvent.objects.filter(user=admin, kind="login", detail__door="admin").count() == 1
    assert (
        AuditEvent.objects.filter(user=admin, kind="login_failed", detail__reason="wrong_mfa_code").count()
        == 1
    )


@pytest.mark.django_db(transaction=True)
def test_a_staff_user_without_totp_is_walked_through_enrollment(live_server):
    from playwright.sync_api import expect

    staff = UserFactory(username="new-staff", password=PASSWORD, roles=["user", "admin"])
    seen: dict[str, Any] = {}

    def steps(page: Any, shot: Any, base: str) -> None:
        page.goto(f"{base}/admin/login/?next=/admin/")
        page.fill("#id_username", staff.username)
        page.fill("#id_password", PASSWORD)
        page.locator("input[type=submit]").click()

        page.wait_for_url("**/admin/mfa/setup/**")
        expect(page.locator(".qr svg")).to_be_visible()  # the QR code, drawn on the page
        secret = page.locator("#totp-secret").inner_text().strip()  # read, not scanned
        seen["secret"] = secret
        shot("enroll")

        page.fill("#id_code", pyotp.TOTP(secret).now())
        page.locator("input[type=submit][value='Turn on']").click()
        expect(page.locator("#recovery-codes li")).to_have_count(10)
        seen["codes"] = [li.strip() for li in page.locator("#recovery-codes li").all_inner_texts()]
        shot("recovery-codes")

        page.locator("#continue").click()
        page.wait_for_url(f"{base}/admin/")
        expect(page.locator("#content")).to_contain_text("Administration")
        shot("in")

    _browse(live_server, "enroll", steps)
    device = TOTPDevice.objects.get(user=staff)
    assert device.confirmed_at is not None
    assert seen["secret"] not in device.secret  # stored encrypted
    assert RecoveryCode.objects.filter(user=staff, used_at__isnull=True).count() == 10
    assert len(set(seen["codes"])) == 10
