"""`EMAIL_VERIFICATION=mandatory` at the Django admin's login, in a real headless Chromium (issue 24).

An administrator whose address is unverified gets the login form's usual error (nothing says
why, as for a wrong password); once the address is verified, the same password gets past the form.
"""

from __future__ import annotations

import pytest

from accounts.models import User
from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD
from accounts.tests.test_admin_browser import CHROMIUM, CHROMIUM_ARGS, pytestmark  # noqa: F401  (slow, needs Chromium)


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.mark.django_db(transaction=True)
def test_an_unverified_administrator_gets_the_usual_login_error(live_server, settings):
    from playwright.sync_api import expect, sync_playwright

    settings.EMAIL_VERIFICATION = "mandatory"
    admin = UserFactory(username="unverified-admin", password=PASSWORD, roles=["user", "admin"])

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(10_000)
        try:

            def log_in() -> None:
                page.goto(f"{live_server.url}/admin/login/?next=/admin/")
                page.fill("#id_username", admin.username)
                page.fill("#id_password", PASSWORD)
                page.locator("input[type=submit]").click()

            log_in()
            expect(page.locator(".errornote")).to_contain_text("Please enter the correct")
            wrong_password_error = page.locator(".errornote").inner_text()

            User.objects.filter(id=admin.id).update(email_verified=True)
            log_in()
            expect(page.locator(".errornote")).to_have_count(0)
            assert "/admin/login/" not in page.url
        finally:
            browser.close()
    assert "email" not in wrong_password_error.lower()
