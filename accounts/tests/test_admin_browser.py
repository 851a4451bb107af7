"""The role-request back-office driven in a real headless Chromium against a live server.

An administrator logs in, filters the pending requests, approves one and
rejects another with a comment; the users then see the outcome over the API.
A screenshot of every step is kept under `artifacts/screenshots/` (git-ignored;
CI keeps it as an artifact).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from accounts import services
from accounts.models import RoleRequest
from accounts.tests.factories import UserFactory
from accounts.tests.mfa_support import code, mfa_on
from accounts.tests.support import PASSWORD
from notifications.models import OutboxEvent
from testing.browser import SCREENSHOTS, browser_page, needs_chromium


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API runs an event loop in this thread; Django would then refuse ORM calls.

    Set for this test only: in the environment for good it would leak into other
    tests' subprocesses (`check --deploy` reports it).
    """
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


pytestmark = [pytest.mark.slow, needs_chromium]


def api(base_url: str, method: str, path: str, body: dict | None = None, token: str | None = None) -> Any:
    """One JSON call to the live server over real HTTP."""
    request = urllib.request.Request(  # noqa: S310  (our own live server)
        base_url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200, (path, response.status)
        return json.loads(response.read())


def api_login(base_url: str, user: Any) -> str:
    return api(base_url, "POST", "/api/v1/auth/login", {"username": user.username, "password": PASSWORD})[
        "access"
    ]


@pytest.mark.django_db(transaction=True)
def test_an_admin_decides_role_requests_in_the_browser(live_server):
    from playwright.sync_api import expect

    admin = UserFactory(username="office-admin", password=PASSWORD, roles=["user", "admin"])
    assert admin.is_staff
    assert not admin.is_superuser  # the `admin` role alone opens the back-office
    secret = mfa_on(admin)  # MFA_REQUIRED_ROLES: the back-office asks for the code after the password
    alice = UserFactory(username="alice-wants-mod", password=PASSWORD)
    bob = UserFactory(username="bob-wants-admin", password=PASSWORD)
    alice_request = services.role_request_create(
        user_id=alice.id, role="moderator", reason="I run the forum."
    )
    bob_request = services.role_request_create(user_id=bob.id, role="admin", reason="I need the console.")

    with browser_page(SCREENSHOTS, width=1280) as (page, shot):

        def decide(row_text: str, action_label: str, comment: str) -> None:
            page.locator("#result_list tbody tr", has_text=row_text).locator("input.action-select").check()
            page.select_option("select[name=action]", label=action_label)
            page.locator("button[name=index]").click()
            expect(page.locator("textarea[name=comment]")).to_be_visible()
            expect(page.locator("#content")).to_contain_text(row_text)
            page.fill("textarea[name=comment]", comment)

        # 1. Log in.
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", admin.username)
        page.fill("#id_password", PASSWORD)
        shot("login-form")
        page.locator("input[type=submit]").click()
        page.wait_for_url("**/admin/mfa/**")
        page.fill("#id_code", code(secret))
        page.locator("input[type=submit][value=Verify]").click()

        # 2. The index says how many requests wait.
        expect(page.locator("#pending-role-requests")).to_contain_text("2 role requests pending")
        shot("index-two-pending")

        # 3. The role requests, then the "Pending" filter in the sidebar.
        page.get_by_role("link", name="Role requests", exact=True).first.click()
        page.wait_for_url("**/admin/accounts/rolerequest/")
        page.locator("#changelist-filter").get_by_role("link", name="Pending", exact=True).click()
        page.wait_for_url("**/admin/accounts/rolerequest/?status__exact=pending")
        expect(page.locator("#result_list tbody tr")).to_have_count(2)
        shot("pending-filtered")

        # 4. Approve Alice's request with a comment.
        decide(alice.username, "Approve selected role requests", "Welcome aboard")
        shot("approve-comment")
        page.locator("input[type=submit][value=Approve]").click()
        expect(page.locator(".messagelist")).to_contain_text("1 request(s) approved.")
        expect(page.locator("#result_list tbody tr")).to_have_count(1)  # only Bob's still pending
        shot("approved")

        # 5. Reject Bob's request with a comment.
        decide(bob.username, "Reject selected role requests", "Not this time")
        shot("reject-comment")
        page.locator("input[type=submit][value=Reject]").click()
        expect(page.locator(".messagelist")).to_contain_text("1 request(s) rejected.")
        shot("rejected")

        # 6. Nothing waits any more.
        page.goto(f"{live_server.url}/admin/")
        expect(page.locator("#pending-role-requests")).to_contain_text("0 role requests pending")
        shot("index-none-pending")

    alice_request.refresh_from_db()
    bob_request.refresh_from_db()
    assert (alice_request.status, alice_request.comment, alice_request.decided_by_id) == (
        "approved",
        "Welcome aboard",
        admin.id,
    )
    assert (bob_request.status, bob_request.comment, bob_request.decided_by_id) == (
        "rejected",
        "Not this time",
        admin.id,
    )
    assert OutboxEvent.objects.filter(key="role_changed", payload__user_id=str(alice.id)).count() == 1
    assert not OutboxEvent.objects.filter(key="role_changed", payload__user_id=str(bob.id)).exists()
    assert not RoleRequest.objects.filter(status="pending").exists()

    # The users see the outcome over the API.
    alice_token = api_login(live_server.url, alice)
    assert api(live_server.url, "GET", "/api/v1/users/me", token=alice_token)["roles"] == [
        "moderator",
        "user",
    ]
    alice_notes = api(live_server.url, "GET", "/api/v1/notifications", token=alice_token)["results"]
    assert [(n["kind"], n["body"], n["data"]["status"]) for n in alice_notes] == [
        ("role_request", "Welcome aboard", "approved")
    ]

    bob_token = api_login(live_server.url, bob)
    bob_me = api(live_server.url, "GET", "/api/v1/users/me", token=bob_token)
    assert (bob_me["roles"], bob_me["is_admin"]) == (["user"], False)
    bob_notes = api(live_server.url, "GET", "/api/v1/notifications", token=bob_token)["results"]
    assert [(n["kind"], n["body"], n["data"]["status"]) for n in bob_notes] == [
        ("role_request", "Not this time", "rejected")
    ]
    assert "rejected" in bob_notes[0]["title"]
