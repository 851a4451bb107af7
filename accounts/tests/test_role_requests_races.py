"""Role-change requests decided at once by two administrators, or asked for twice at once (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts import services
from accounts.models import AuditEvent, RoleRequest
from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD, bearer
from core.errors import ServiceError
from notifications.models import Notification, OutboxEvent
from testing.races import run_at_once

pytestmark = pytest.mark.usefixtures("commit_per_request")

URL = "/api/v1/role-requests"


def role_changed_events(user: Any) -> Any:
    return OutboxEvent.objects.filter(key="role_changed", payload__user_id=str(user.id))


def role_request_notes(user: Any) -> Any:
    return Notification.objects.filter(user_id=user.id, kind="role_request")


# Real commits (the roles come back after the flush: accounts.apps.ensure_default_roles).
transactional = pytest.mark.django_db(transaction=True)
needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: concurrent writers need row locks; SQLite's shared in-memory "
    "test database refuses a second writer at once ('database table is locked')",
)


def split(results: list[Any]) -> tuple[list[RoleRequest], list[Exception]]:
    won = [r for r in results if isinstance(r, RoleRequest)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) + len(lost) == len(results), results
    return won, lost


@transactional
@pytest.mark.postgres
@needs_postgres
def test_two_admins_approving_at_once_change_the_role_once():
    first_admin = UserFactory(password=PASSWORD, roles=["user", "admin"])
    second_admin = UserFactory(password=PASSWORD, roles=["user", "admin"])
    for round_ in range(5):
        asker = UserFactory(password=PASSWORD)
        pending = services.role_request_create(user_id=asker.id, role="moderator", reason=f"round {round_}")

        results = run_at_once(
            [
                lambda admin=admin, pending=pending: services.role_request_approve(
                    request_id=pending.id, admin_id=admin.id, comment=f"by {admin.username}"
                )
                for admin in (first_admin, second_admin)
            ]
        )

        won, lost = split(results)
        assert len(won) == 1, results
        assert len(lost) == 1, results
        assert isinstance(lost[0], ServiceError)
        assert lost[0].code == "not_pending"
        stored = RoleRequest.objects.get(id=pending.id)
        assert stored.status == "approved"
        assert stored.decided_by_id == won[0].decided_by_id
        assert stored.comment == won[0].comment
        assert asker.roles == ["moderator", "user"]
        assert role_changed_events(asker).count() == 1
        assert role_request_notes(asker).count() == 1
        assert AuditEvent.objects.filter(user=asker, kind="role_changed").count() == 1


@transactional
@pytest.mark.postgres
@needs_postgres
def test_an_approval_and_a_rejection_at_once_decide_once():
    approver = UserFactory(password=PASSWORD, roles=["user", "admin"])
    rejecter = UserFactory(password=PASSWORD, roles=["user", "admin"])
    for _ in range(5):
        asker = UserFactory(password=PASSWORD)
        pending = services.role_request_create(user_id=asker.id, role="moderator")

        results = run_at_once(
            [
                lambda pending=pending: services.role_request_approve(
                    request_id=pending.id, admin_id=approver.id
                ),
                lambda pending=pending: services.role_request_reject(
                    request_id=pending.id, admin_id=rejecter.id
                ),
            ]
        )

        won, lost = split(results)
        assert len(won) == 1, results
        assert [getattr(exc, "code", None) for exc in lost] == ["not_pending"]
        stored = RoleRequest.objects.get(id=pending.id)
        assert stored.status == won[0].status
        approved = stored.status == "approved"
        assert asker.roles == (["moderator", "user"] if approved else ["user"])
        assert role_changed_events(asker).count() == (1 if approved else 0)
        assert role_request_notes(asker).count() == 1


@transactional
@pytest.mark.postgres
@needs_postgres
def test_two_requests_at_once_by_one_user_create_one():
    asker = UserFactory(password=PASSWORD)
    response = APIClient().post(
        "/api/v1/auth/login", {"username": asker.username, "password": PASSWORD}, format="json"
    )
    access = response.json()["access"]

    def create(role: str) -> Callable[[], Any]:
        def call() -> Any:
            return bearer(access).post(URL, {"role": role, "reason": "race"}, format="json")

        return call

    for _ in range(5):
        responses = run_at_once([create("moderator"), create("admin")])

        assert not any(isinstance(r, Exception) for r in responses), responses
        assert sorted(r.status_code for r in responses) == [201, 400], [r.content for r in responses]
        refused = next(r for r in responses if r.status_code == 400)
        assert refused.json()["code"] == "pending_exists"
        pending = RoleRequest.objects.filter(user=asker, status="pending")
        assert pending.count() == 1
        services.role_request_cancel(request_id=pending.get().id, user_id=asker.id)
