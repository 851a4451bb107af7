"""`EMAIL_VERIFICATION=mandatory` at the Django admin's login, in a real headless Chromium (issue 24).

An administrator whose address is unverified gets the login form's usual error (nothing says
why, as for a wrong password); once the address is verified, the same password gets past the form.
"""

from __future__ import annotations

import pytest

from accounts.models import User
from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD
from testing.browser import SCREENSHOTS, browser_page, needs_chromium

pytestmark = [pytest.mark.slow, needs_chromium]


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.mark.django_db(transaction=True)
def test_an_unverified_administrator_gets_the_usual_login_error(live_server, settings):
    from playwright.sync_api import expect

    settings.EMAIL_VERIFICATION = "mandatory"
    admin = UserFactory(username="unverified-admin", password=PASSWORD, roles=["user", "admin"])

    with browser_page(SCREENSHOTS / "email-verification", width=1280) as (page, _shot):

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
    assert "email" not in wrong_password_error.lower()
