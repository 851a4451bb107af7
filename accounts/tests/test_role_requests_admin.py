"""Role-change requests in the Django admin: list, filters, search, bulk decisions, read-only records."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Group

from accounts import services
from accounts.models import AuditEvent, RoleRequest
from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD, bearer_for
from notifications.models import Notification, OutboxEvent

CHANGELIST = "/admin/accounts/rolerequest/"


def row_ids(response: Any) -> set[str]:
    """The primary keys of the rows a changelist shows (their action checkboxes)."""
    html = response.content.decode()
    return set(re.findall(r'name="_selected_action" value="([^"]+)"', html))


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def role_changed_events(user: Any) -> Any:
    return OutboxEvent.objects.filter(key="role_changed", payload__user_id=str(user.id))


def role_request_notes(user: Any) -> Any:
    return Notification.objects.filter(user_id=user.id, kind="role_request")


def ask(user: Any, role: str = "moderator", reason: str = "I run the forum.") -> RoleRequest:
    return services.role_request_create(user_id=user.id, role=role, reason=reason)


@pytest.fixture
def admin_client(client: Any, admin_user: Any) -> Any:
    """The Django test client, logged in as a member of the `admin` role (not a superuser)."""
    assert not admin_user.is_superuser
    client.force_login(admin_user)
    return client


@pytest.fixture
def anna(db: Any) -> Any:
    return UserFactory(username="anna-asks", email="anna@example.org", password=PASSWORD)


@pytest.fixture
def boris(db: Any) -> Any:
    return UserFactory(username="boris-asks", email="boris@example.org", password=PASSWORD)


@pytest.fixture
def clara(db: Any) -> Any:
    return UserFactory(username="clara-asks", email="clara@example.org", password=PASSWORD)


# --- the list -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_shows_status_role_user_and_created(admin_client, anna):
    ask(anna)

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    html = response.content.decode()
    for column in ("status", "role", "user", "created_at"):
        assert f"column-{column}" in html, column
    assert "By status" in html
    assert "By role" in html
    assert "anna-asks" in html
    assert "Pending" in html


@pytest.mark.django_db
def test_filters_and_search_pick_the_right_rows(admin_client, admin_user, anna, boris, clara):
    pending_moderator = ask(anna)
    pending_admin = ask(boris, role="admin")
    decided = ask(clara)
    services.role_request_approve(request_id=decided.id, admin_id=admin_user.id)
    moderator_group = Group.objects.get(name="moderator")

    queries = {
        "": {pending_moderator, pending_admin, decided},
        "?status__exact=pending": {pending_moderator, pending_admin},
        "?status__exact=approved": {decided},
        "?status__exact=rejected": set(),
        f"?role__id__exact={moderator_group.id}": {pending_moderator, decided},
        f"?role__id__exact={moderator_group.id}&status__exact=pending": {pending_moderator},
        "?q=boris-asks": {pending_admin},
        "?q=clara@example.org": {decided},
        "?q=nobody-at-all": set(),
    }
    for query, expected in queries.items():
        response = admin_client.get(CHANGELIST + query)
        assert response.status_code == 200, query
        assert row_ids(response) == {str(r.pk) for r in expected}, query


# --- bulk actions ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_approve_selected_asks_for_a_comment_then_decides_like_the_api(
    admin_client, admin_user, anna, django_capture_on_commit_callbacks
):
    anna_api = bearer_for(anna)
    assert anna_api.get("/api/v1/users/me").json()["roles"] == ["user"]  # the cached user is warm
    pending = ask(anna)
    selected = {"action": "approve_selected", "_selected_action": [str(pending.pk)]}

    confirm = admin_client.post(CHANGELIST, {**selected, "index": "0"})

    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert 'name="comment"' in page
    assert "anna-asks" in page
    assert f'value="{pending.pk}"' in page
    assert RoleRequest.objects.get(pk=pending.pk).status == "pending"  # nothing decided yet

    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(CHANGELIST, {**selected, "apply": "1", "comment": "Welcome aboard"})

    assert done.status_code == 302
    stored = RoleRequest.objects.get(pk=pending.pk)
    assert (stored.status, stored.decided_by_id, stored.comment) == (
        "approved",
        admin_user.id,
        "Welcome aboard",
    )
    assert stored.decided_at is not None
    assert anna.roles == ["moderator", "user"]
    assert anna_api.get("/api/v1/users/me").json()["roles"] == ["moderator", "user"]  # cache refreshed
    assert role_changed_events(anna).count() == 1
    assert AuditEvent.objects.get(user=anna, kind="role_changed").actor_id == admin_user.id
    note = role_request_notes(anna).get()
    assert note.body == "Welcome aboard"
    assert note.data["status"] == "approved"
    assert Notification.objects.filter(user=anna).count() == 1
    listing = admin_client.get(done["Location"])
    assert "1 request(s) approved." in listing.content.decode()


@pytest.mark.django_db
def test_reject_selected_decides_every_selected_request(admin_client, admin_user, anna, boris):
    requests = [ask(anna), ask(boris, role="admin")]
    selected = {"action": "reject_selected", "_selected_action": [str(r.pk) for r in requests]}

    confirm = admin_client.post(CHANGELIST, {**selected, "index": "0"})
    assert confirm.status_code == 200
    assert 'name="comment"' in confirm.content.decode()
    done = admin_client.post(CHANGELIST, {**selected, "apply": "1", "comment": "Not this time"})

    assert done.status_code == 302
    for role_request, someone in zip(requests, (anna, boris), strict=True):
        stored = RoleRequest.objects.get(pk=role_request.pk)
        assert (stored.status, stored.decided_by_id, stored.comment) == (
            "rejected",
            admin_user.id,
            "Not this time",
        )
        assert someone.roles == ["user"]
        assert not role_changed_events(someone).exists()
        note = role_request_notes(someone).get()
        assert (note.body, note.data["status"]) == ("Not this time", "rejected")
    assert "2 request(s) rejected." in admin_client.get(done["Location"]).content.decode()


@pytest.mark.django_db
def test_the_comment_is_optional_in_the_admin(admin_client, anna):
    pending = ask(anna)

    done = admin_client.post(
        CHANGELIST, {"action": "approve_selected", "_selected_action": [str(pending.pk)], "apply": "1"}
    )

    assert done.status_code == 302
    stored = RoleRequest.objects.get(pk=pending.pk)
    assert (stored.status, stored.comment) == ("approved", "")


@pytest.mark.django_db
def test_decided_and_own_requests_are_skipped_with_a_warning(admin_client, admin_user, anna, boris):
    decided = ask(anna)
    services.role_request_reject(request_id=decided.id, admin_id=admin_user.id, comment="first")
    own = ask(admin_user)
    pending = ask(boris)
    chosen = [decided, own, pending]

    done = admin_client.post(
        CHANGELIST,
        {
            "action": "approve_selected",
            "_selected_action": [str(r.pk) for r in chosen],
            "apply": "1",
            "comment": "second",
        },
    )

    assert done.status_code == 302
    assert RoleRequest.objects.get(pk=pending.pk).status == "approved"
    again = RoleRequest.objects.get(pk=decided.pk)
    assert (again.status, again.comment) == ("rejected", "first")
    assert RoleRequest.objects.get(pk=own.pk).status == "pending"
    assert anna.roles == ["user"]
    assert admin_user.roles == ["admin", "user"]
    assert role_request_notes(anna).count() == 1
    assert not role_request_notes(admin_user).exists()
    listing = text_of(admin_client.get(done["Location"]).content.decode())
    assert "1 request(s) approved." in listing
    assert "Not decided" in listing


# --- read-only records ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_decided_request_cannot_be_edited(admin_client, admin_user, anna):
    decided = ask(anna)
    services.role_request_approve(request_id=decided.id, admin_id=admin_user.id, comment="ok")
    url = f"{CHANGELIST}{decided.pk}/change/"

    page = admin_client.get(url)

    assert page.status_code == 200
    html = page.content.decode()
    assert "anna-asks" in html
    for field in ("status", "comment", "role", "user", "reason", "decided_by"):
        assert not re.search(rf'<(input|select|textarea)[^>]*name="{field}"', html), field
    assert 'name="_save"' not in html
    posted = admin_client.post(url, {"status": "pending", "comment": "reopened"})
    assert posted.status_code == 403
    stored = RoleRequest.objects.get(pk=decided.pk)
    assert (stored.status, stored.comment) == ("approved", "ok")


@pytest.mark.django_db
def test_a_decided_request_cannot_be_deleted(admin_client, admin_user, anna):
    """Read-only includes deletion: the record of who decided, when and why must stay."""
    decided = ask(anna)
    services.role_request_approve(request_id=decided.id, admin_id=admin_user.id, comment="ok")

    page = admin_client.get(f"{CHANGELIST}{decided.pk}/delete/")
    bulk = admin_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [str(decided.pk)], "post": "yes"}
    )

    assert RoleRequest.objects.filter(pk=decided.pk).exists()
    assert page.status_code == 403
    assert bulk.status_code in (200, 302)


@pytest.mark.django_db
def test_requests_are_not_added_in_the_admin(admin_client):
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client.post(f"{CHANGELIST}add/", {"reason": "x"}).status_code == 403
    assert not RoleRequest.objects.exists()


@pytest.mark.django_db
def test_a_plain_user_cannot_open_the_role_requests(client, anna):
    client.force_login(anna)

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# --- the index and the user's page ------------------------------------------------------------------


def pending_banner(response: Any) -> str:
    html = response.content.decode()
    match = re.search(r'<div class="module" id="pending-role-requests">(.*?)</div>', html, re.S)
    assert match, "no pending-role-requests block on the admin index"
    return text_of(match.group(1))


@pytest.mark.django_db
def test_the_index_shows_how_many_requests_are_pending(admin_client, admin_user, anna, boris, clara):
    assert pending_banner(admin_client.get("/admin/")) == "0 role requests pending"
    first, second, third = ask(anna), ask(boris), ask(clara)
    services.role_request_cancel(request_id=third.id, user_id=clara.id)

    assert pending_banner(admin_client.get("/admin/")) == "2 role requests pending"

    services.role_request_approve(request_id=first.id, admin_id=admin_user.id)
    response = admin_client.get("/admin/")
    assert pending_banner(response) == "1 role request pending"
    assert f'href="{CHANGELIST}?status__exact=pending"' in response.content.decode()
    assert row_ids(admin_client.get(f"{CHANGELIST}?status__exact=pending")) == {str(second.pk)}


@pytest.mark.django_db
def test_the_user_page_links_to_their_audit_log_notifications_and_role_requests(
    admin_client, admin_user, anna, boris
):
    mine = ask(anna)
    services.role_request_approve(request_id=mine.id, admin_id=admin_user.id, comment="ok")
    theirs = ask(boris)
    services.role_request_reject(request_id=theirs.id, admin_id=admin_user.id)

    page = admin_client.get(f"/admin/accounts/user/{anna.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    links = {
        "audit": f"/admin/accounts/auditevent/?user__id__exact={anna.pk}",
        "notifications": f"/admin/notifications/notification/?user__id__exact={anna.pk}",
        "role requests": f"{CHANGELIST}?user__id__exact={anna.pk}",
    }
    for name, link in links.items():
        assert f'href="{link}"' in html, name

    requests_page = admin_client.get(links["role requests"])
    assert requests_page.status_code == 200
    assert row_ids(requests_page) == {str(mine.pk)}
    notes_page = admin_client.get(links["notifications"])
    assert notes_page.status_code == 200
    assert row_ids(notes_page) == {str(n.pk) for n in Notification.objects.filter(user=anna)}
    assert row_ids(notes_page)  # the approval's notification
    audit_page = admin_client.get(links["audit"])
    assert audit_page.status_code == 200
    audit_text = text_of(audit_page.content.decode())
    assert "anna-asks" in audit_text
    assert "boris-asks" not in audit_text
