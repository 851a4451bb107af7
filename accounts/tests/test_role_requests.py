"""Role-change requests over the API, and roles read from the cached user rather than the token."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import jwt
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEvent, RoleRequest
from accounts.tests.factories import UserFactory
from accounts.tests.mfa_support import assert_admin_at_once
from accounts.tests.support import PASSWORD, bearer, bearer_for
from notifications.models import Notification, OutboxEvent

pytestmark = pytest.mark.usefixtures("commit_per_request")

URL = "/api/v1/role-requests"
ME = "/api/v1/users/me"
USERS = "/api/v1/users"

REQUEST_FIELDS = {
    "id",
    "user",
    "username",
    "role",
    "reason",
    "status",
    "created_at",
    "decided_at",
    "decided_by",
    "comment",
}


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def role_changed_events(user: Any) -> Any:
    return OutboxEvent.objects.filter(key="role_changed", payload__user_id=str(user.id))


def role_request_notes(user: Any) -> Any:
    return Notification.objects.filter(user_id=user.id, kind="role_request")


@pytest.fixture
def client_for(db: Any) -> Callable[[Any], APIClient]:
    """A client carrying the access token of a fresh session of the given user."""
    return bearer_for


def ask(client: APIClient, role: str = "moderator", reason: str = "I run the support forum.") -> dict:
    response = client.post(URL, {"role": role, "reason": reason}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


# --- create ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_answers_201_with_a_pending_request(auth_client, user):
    before = timezone.now()

    response = auth_client.post(URL, {"role": "moderator", "reason": "I run the forum."}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == REQUEST_FIELDS
    assert body["user"] == str(user.id)
    assert body["username"] == user.username
    assert (body["role"], body["reason"], body["status"]) == ("moderator", "I run the forum.", "pending")
    assert (body["decided_at"], body["decided_by"], body["comment"]) == (None, None, "")
    assert body["created_at"].endswith("Z")
    assert before - timedelta(seconds=1) <= parse_time(body["created_at"]) <= timezone.now()
    stored = RoleRequest.objects.get(id=body["id"])
    assert (stored.user_id, stored.role.name, stored.status) == (user.id, "moderator", "pending")


@pytest.mark.django_db
def test_create_needs_authentication(api_client):
    response = api_client.post(URL, {"role": "moderator"}, format="json")

    assert response.status_code == 401
    assert not RoleRequest.objects.exists()


@pytest.mark.django_db
def test_the_reason_is_optional(auth_client):
    body = ask(auth_client, reason="")

    assert body["reason"] == ""


@pytest.mark.django_db
@pytest.mark.parametrize("second_role", ["moderator", "admin"])
def test_a_second_request_while_one_is_pending_is_refused(auth_client, user, second_role):
    ask(auth_client)

    response = auth_client.post(URL, {"role": second_role, "reason": "again"}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "pending_exists"
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert RoleRequest.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_a_new_request_is_accepted_once_the_pending_one_is_cancelled(auth_client, user):
    first = ask(auth_client)
    assert auth_client.post(f"{URL}/{first['id']}/cancel").status_code == 200

    second = ask(auth_client, role="admin")

    assert second["id"] != first["id"]
    assert RoleRequest.objects.filter(user=user, status="pending").count() == 1


@pytest.mark.django_db
def test_a_role_the_user_has_already_is_refused(auth_client, user):
    response = auth_client.post(URL, {"role": "user", "reason": "?"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "role_held"
    assert not RoleRequest.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_an_unknown_role_is_a_field_error(auth_client, user):
    response = auth_client.post(URL, {"role": "emperor", "reason": "why not"}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["role"]
    assert isinstance(body["role"], list)
    assert body["role"]
    assert not RoleRequest.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_a_missing_role_is_a_field_error(auth_client):
    response = auth_client.post(URL, {"reason": "no role named"}, format="json")

    assert response.status_code == 400
    assert "role" in response.json()


# --- list and detail ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_user_lists_only_their_own_requests_paginated(auth_client, user, client_for):
    other = UserFactory(password=PASSWORD)
    theirs = ask(client_for(other))
    first = ask(auth_client)
    auth_client.post(f"{URL}/{first['id']}/cancel")
    second = ask(auth_client, role="admin")

    page = auth_client.get(URL, {"page_size": 1})

    assert page.status_code == 200
    body = page.json()
    assert set(body) >= {"next", "previous", "results"}
    assert body["previous"] is None
    assert body["next"]
    seen = [item["id"] for item in body["results"]]
    following = auth_client.get(body["next"]).json()
    seen += [item["id"] for item in following["results"]]
    assert following["next"] is None
    assert sorted(seen) == sorted([first["id"], second["id"]])
    assert theirs["id"] not in seen
    assert all(item["user"] == str(user.id) for item in body["results"] + following["results"])


@pytest.mark.django_db
def test_an_admin_lists_every_request_and_filters_by_status(admin_client, auth_client, client_for):
    mine = ask(auth_client)
    other_client = client_for(UserFactory(password=PASSWORD))
    cancelled = ask(other_client)
    other_client.post(f"{URL}/{cancelled['id']}/cancel")
    pending_too = ask(other_client, role="admin")

    everything = admin_client.get(URL)
    pending = admin_client.get(URL, {"status": "pending"})
    only_cancelled = admin_client.get(URL, {"status": "cancelled"})

    assert everything.status_code == 200
    assert {r["id"] for r in everything.json()["results"]} == {mine["id"], cancelled["id"], pending_too["id"]}
    assert {r["id"] for r in pending.json()["results"]} == {mine["id"], pending_too["id"]}
    assert [r["id"] for r in only_cancelled.json()["results"]] == [cancelled["id"]]
    assert admin_client.get(URL, {"status": "nonsense"}).status_code == 400


@pytest.mark.django_db
def test_detail_is_for_the_owner_and_admins_only(auth_client, admin_client, client_for):
    created = ask(auth_client)
    stranger = client_for(UserFactory(password=PASSWORD))

    own = auth_client.get(f"{URL}/{created['id']}")
    as_admin = admin_client.get(f"{URL}/{created['id']}")
    as_stranger = stranger.get(f"{URL}/{created['id']}")

    assert own.status_code == 200
    assert own.json() == created
    assert as_admin.status_code == 200
    assert as_admin.json()["id"] == created["id"]
    assert as_stranger.status_code == 404
    assert as_stranger.json()["code"] == "not_found"
    missing = "00000000-0000-4000-8000-000000000000"
    assert admin_client.get(f"{URL}/{missing}").status_code == 404


# --- cancel ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_owner_cancels_a_pending_request(auth_client, user):
    created = ask(auth_client)

    response = auth_client.post(f"{URL}/{created['id']}/cancel")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["decided_at"] is not None
    assert RoleRequest.objects.get(id=created["id"]).status == "cancelled"
    assert user.roles == ["user"]
    assert not role_request_notes(user).exists()


@pytest.mark.django_db
def test_another_user_cannot_cancel_and_does_not_learn_it_exists(auth_client, client_for, admin_client):
    created = ask(auth_client)
    stranger = client_for(UserFactory(password=PASSWORD))

    assert stranger.post(f"{URL}/{created['id']}/cancel").status_code == 404
    assert admin_client.post(f"{URL}/{created['id']}/cancel").status_code == 404  # owner only

    assert RoleRequest.objects.get(id=created["id"]).status == "pending"


@pytest.mark.django_db
def test_only_a_pending_request_can_be_cancelled(auth_client, admin_client):
    created = ask(auth_client)
    assert auth_client.post(f"{URL}/{created['id']}/cancel").status_code == 200

    again = auth_client.post(f"{URL}/{created['id']}/cancel")

    assert again.status_code == 400
    assert again.json()["code"] == "not_pending"

    decided = ask(auth_client, role="admin")
    assert admin_client.post(f"{URL}/{decided['id']}/reject").status_code == 200
    after_decision = auth_client.post(f"{URL}/{decided['id']}/cancel")
    assert after_decision.status_code == 400
    assert after_decision.json()["code"] == "not_pending"
    assert RoleRequest.objects.get(id=decided["id"]).status == "rejected"


# --- approve and reject ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_a_non_admin_cannot_decide(auth_client, client_for, user, verb):
    created = ask(auth_client)
    moderator = client_for(UserFactory(password=PASSWORD, roles=["user", "moderator"]))

    for client in (auth_client, moderator):
        response = client.post(f"{URL}/{created['id']}/{verb}", {"comment": "sure"}, format="json")
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"

    assert RoleRequest.objects.get(id=created["id"]).status == "pending"
    assert user.roles == ["user"]
    assert not role_changed_events(user).exists()


@pytest.mark.django_db
def test_an_admin_approves_with_a_comment(auth_client, admin_client, user, admin_user):
    assert auth_client.get(ME).json()["roles"] == ["user"]  # the cached user is warm
    created = ask(auth_client)
    before = timezone.now()

    response = admin_client.post(
        f"{URL}/{created['id']}/approve", {"comment": "Welcome aboard"}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "approved"
    assert body["decided_by"] == str(admin_user.id)
    assert before - timedelta(seconds=1) <= parse_time(body["decided_at"]) <= timezone.now()
    assert body["comment"] == "Welcome aboard"
    stored = RoleRequest.objects.get(id=created["id"])
    assert (stored.status, stored.decided_by_id, stored.comment) == (
        "approved",
        admin_user.id,
        "Welcome aboard",
    )

    # Same access token: the roles come from the (refreshed) cached user, not the token.
    assert claims(auth_client.tokens["access"])["roles"] == ["user"]
    assert auth_client.get(ME).json()["roles"] == ["moderator", "user"]

    event = role_changed_events(user).get()
    assert event.payload["roles"] == ["moderator", "user"]
    assert event.payload["previous_roles"] == ["user"]
    audit = AuditEvent.objects.get(user=user, kind="role_changed")
    assert audit.actor_id == admin_user.id
    note = role_request_notes(user).get()
    assert note.body == "Welcome aboard"
    assert note.data == {"request_id": created["id"], "role": "moderator", "status": "approved"}
    assert Notification.objects.filter(user=user).count() == 1  # one notification, not two

    seen = auth_client.get("/api/v1/notifications").json()["results"]
    assert [(n["kind"], n["body"]) for n in seen] == [("role_request", "Welcome aboard")]


@pytest.mark.django_db
def test_an_approved_admin_role_works_with_the_token_issued_before(auth_client, admin_client, settings):
    assert auth_client.get(USERS).status_code == 403
    created = ask(auth_client, role="admin")

    assert admin_client.post(f"{URL}/{created['id']}/approve").status_code == 200

    assert "admin" not in claims(auth_client.tokens["access"])["roles"]
    assert_admin_at_once(auth_client, settings)


@pytest.mark.django_db
def test_a_request_is_decided_once(auth_client, admin_client, user, client_for):
    created = ask(auth_client)
    other_admin = client_for(UserFactory(password=PASSWORD, roles=["user", "admin"]))
    assert (
        admin_client.post(f"{URL}/{created['id']}/approve", {"comment": "ok"}, format="json").status_code
        == 200
    )

    again = admin_client.post(f"{URL}/{created['id']}/approve", {"comment": "twice"}, format="json")
    by_another = other_admin.post(f"{URL}/{created['id']}/approve")
    rejected_after = other_admin.post(f"{URL}/{created['id']}/reject", {"comment": "no"}, format="json")

    for response in (again, by_another, rejected_after):
        assert response.status_code == 400
        assert response.json()["code"] == "not_pending"
    assert role_changed_events(user).count() == 1
    assert role_request_notes(user).count() == 1
    stored = RoleRequest.objects.get(id=created["id"])
    assert (stored.status, stored.comment) == ("approved", "ok")
    assert auth_client.get(ME).json()["roles"] == ["moderator", "user"]


@pytest.mark.django_db
def test_an_admin_rejects_with_a_comment(auth_client, admin_client, user, admin_user):
    created = ask(auth_client)

    response = admin_client.post(f"{URL}/{created['id']}/reject", {"comment": "Not this time"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["decided_by"], body["comment"]) == (
        "rejected",
        str(admin_user.id),
        "Not this time",
    )
    assert body["decided_at"] is not None
    assert auth_client.get(ME).json()["roles"] == ["user"]
    user.refresh_from_db()
    assert user.roles == ["user"]
    assert not role_changed_events(user).exists()
    assert not AuditEvent.objects.filter(user=user, kind="role_changed").exists()
    note = role_request_notes(user).get()
    assert note.body == "Not this time"
    assert note.data["status"] == "rejected"
    assert "rejected" in note.title


@pytest.mark.django_db
def test_the_comment_is_optional(auth_client, admin_client):
    created = ask(auth_client)

    response = admin_client.post(f"{URL}/{created['id']}/approve", {}, format="json")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["comment"]) == ("approved", "")


@pytest.mark.django_db
@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_an_admin_cannot_decide_their_own_request(admin_client, admin_user, client_for, verb):
    created = ask(admin_client)

    response = admin_client.post(f"{URL}/{created['id']}/{verb}", {"comment": "me"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "own_request"
    assert RoleRequest.objects.get(id=created["id"]).status == "pending"
    assert not role_request_notes(admin_user).exists()
    # Another administrator may.
    other_admin = client_for(UserFactory(password=PASSWORD, roles=["user", "admin"]))
    assert other_admin.post(f"{URL}/{created['id']}/{verb}").status_code == 200


@pytest.mark.django_db
def test_a_cancelled_request_cannot_be_decided(auth_client, admin_client, user):
    created = ask(auth_client)
    auth_client.post(f"{URL}/{created['id']}/cancel")

    response = admin_client.post(f"{URL}/{created['id']}/approve")

    assert response.status_code == 400
    assert response.json()["code"] == "not_pending"
    assert RoleRequest.objects.get(id=created["id"]).status == "cancelled"
    assert not role_changed_events(user).exists()
    assert auth_client.get(ME).json()["roles"] == ["user"]


@pytest.mark.django_db
def test_deciding_an_unknown_request_is_404(admin_client):
    response = admin_client.post(f"{URL}/00000000-0000-4000-8000-000000000000/approve")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- roles come from the cached user, not from the token ----------------------------------------


@pytest.mark.django_db
def test_a_removed_admin_role_stops_working_at_once(client_for, admin_client):
    demoted = UserFactory(password=PASSWORD, roles=["user", "admin"])
    demoted_client = client_for(demoted)
    assert "admin" in claims(demoted_client.tokens["access"])["roles"]
    assert demoted_client.get(USERS).status_code == 200  # the cached user is warm

    response = admin_client.patch(f"{USERS}/{demoted.id}", {"roles": ["user"]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["roles"] == ["user"]

    refused = demoted_client.get(USERS)
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert demoted_client.get(ME).json()["is_admin"] is False
    # The token itself still claims the role: it is simply not trusted for it.
    assert "admin" in claims(demoted_client.tokens["access"])["roles"]


@pytest.mark.django_db
def test_a_granted_admin_role_works_at_once(auth_client, admin_client, user, settings):
    assert auth_client.get(USERS).status_code == 403  # the cached user is warm

    response = admin_client.patch(f"{USERS}/{user.id}", {"roles": ["user", "admin"]}, format="json")
    assert response.status_code == 200

    assert "admin" not in claims(auth_client.tokens["access"])["roles"]
    assert_admin_at_once(auth_client, settings)


@pytest.mark.django_db
def test_an_admin_role_edit_audits_emits_and_notifies(auth_client, admin_client, user, admin_user):
    response = admin_client.patch(f"{USERS}/{user.id}", {"roles": ["user", "moderator"]}, format="json")
    assert response.status_code == 200

    audit = AuditEvent.objects.get(user=user, kind="role_changed")
    assert audit.actor_id == admin_user.id
    assert audit.detail == {"roles": ["moderator", "user"], "previous_roles": ["user"]}
    assert role_changed_events(user).count() == 1
    note = Notification.objects.get(user=user, kind="security")
    assert note.data["event"] == "role_changed"
    assert note.data["roles"] == ["moderator", "user"]
    assert auth_client.get(ME).json()["roles"] == ["moderator", "user"]

    # Setting the same roles again changes nothing: no audit row, event or notification.
    assert (
        admin_client.patch(f"{USERS}/{user.id}", {"roles": ["moderator", "user"]}, format="json").status_code
        == 200
    )
    assert AuditEvent.objects.filter(user=user, kind="role_changed").count() == 1
    assert role_changed_events(user).count() == 1
    assert Notification.objects.filter(user=user, kind="security").count() == 1


def test_set_roles_command_changes_roles_like_an_admin_edit(user, login, django_capture_on_commit_callbacks):
    from django.core.management import call_command

    from accounts.models import AuditEvent
    from notifications.models import Notification, OutboxEvent

    tokens = login(user)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("set_roles", user.username, "user", "moderator")
    user.refresh_from_db()
    assert user.roles == ["moderator", "user"]
    assert OutboxEvent.objects.filter(key="role_changed", payload__user_id=str(user.id)).count() == 1
    assert AuditEvent.objects.filter(user=user, kind="role_changed").count() == 1
    assert Notification.objects.filter(user=user, kind="security", data__event="role_changed").count() == 1
    assert bearer(tokens["access"]).get("/api/v1/users/me").json()["roles"] == ["moderator", "user"]


def test_set_roles_command_refuses_an_unknown_role(user):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="Unknown role: wizard"):
        call_command("set_roles", user.username, "wizard")
    assert user.roles == ["user"]
