"""The Django admin's doors on roles and users go through the services.

A role (a Django group) deleted on its admin page or with the bulk action goes through
`role_delete`: each holder loses it through `user_set_roles` (`role_changed`, an audit
row with the administrator as actor, the cached user refreshed, so `/users/me` says so at
once); a rename or a new role goes through `role_update` / `role_create`. The roles the
service relies on are kept. Users are never deleted by the admin: the delete page and
the bulk delete are closed, and its actions deactivate or soft-delete through the services.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group

from accounts import services
from accounts.models import AuditEvent, AuthSession, Role, RoleRequest, User
from accounts.services import AuditKind
from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD, bearer_for
from notifications.models import OutboxEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]

ME = "/api/v1/users/me"
GROUPS = "/admin/auth/group/"
USERS = "/admin/accounts/user/"


def role(name: str) -> Group:
    return services.role_create(name=name, description=f"The {name}s.")


def holder_of(*names: str) -> Any:
    """A user holding `user` and these roles, with a session whose cached user is warm."""
    user = UserFactory(password=PASSWORD, roles=["user", *names])
    client = bearer_for(user)
    assert client.get(ME).json()["roles"] == sorted(["user", *names])
    client.user = user
    return client


def role_changes(user: User) -> list[dict[str, Any]]:
    return [e.payload for e in OutboxEvent.objects.filter(key="role_changed", payload__user_id=str(user.id))]


def test_a_role_deleted_on_its_admin_page_is_taken_from_every_holder_at_once(superuser_client, root):
    reviewer = role("reviewer")
    holder = holder_of("reviewer", "moderator")
    pending = services.role_request_create(user_id=UserFactory().id, role="reviewer")

    response = superuser_client.post(f"{GROUPS}{reviewer.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Group.objects.filter(name="reviewer").exists()
    assert holder.get(ME).json()["roles"] == ["moderator", "user"]  # the cached user was refreshed
    [event] = role_changes(holder.user)
    assert (event["roles"], event["previous_roles"]) == (
        ["moderator", "user"],
        ["moderator", "reviewer", "user"],
    )
    [audit] = AuditEvent.objects.filter(user=holder.user, kind=AuditKind.ROLE_CHANGED)
    assert audit.actor_id == root.id
    assert AuditEvent.objects.filter(
        kind=AuditKind.ADMIN_ACTION, actor=root, detail__action="role_deleted", detail__role="reviewer"
    ).exists()
    assert not RoleRequest.objects.filter(id=pending.id).exists()
    assert "reviewer" not in [r["name"] for r in holder.get("/api/v1/roles").json()]


def test_roles_deleted_in_bulk_are_taken_from_every_holder(superuser_client):
    first, second = role("reviewer"), role("editor")
    both, one = holder_of("reviewer", "editor"), holder_of("editor")
    selected = [str(first.pk), str(second.pk)]

    confirm = superuser_client.post(GROUPS, {"action": "delete_selected", "_selected_action": selected})
    assert b"Are you sure" in confirm.content
    response = superuser_client.post(
        GROUPS, {"action": "delete_selected", "_selected_action": selected, "post": "yes"}
    )

    assert response.status_code == 302
    assert not Group.objects.filter(name__in=["reviewer", "editor"]).exists()
    for client in (both, one):
        assert client.get(ME).json()["roles"] == ["user"]
        assert role_changes(client.user)[-1]["roles"] == ["user"]
    assert len(role_changes(both.user)) == 2
    assert AuditEvent.objects.filter(kind=AuditKind.ROLE_CHANGED).count() == 3


def test_the_roles_the_service_relies_on_are_not_deleted(superuser_client):
    custom = role("reviewer")
    admin_role = Group.objects.get(name="admin")

    page = superuser_client.post(f"{GROUPS}{admin_role.pk}/delete/", {"post": "yes"}, follow=True)
    assert b"The admin role is one the service relies on" in page.content
    bulk = superuser_client.post(
        GROUPS,
        {
            "action": "delete_selected",
            "_selected_action": [str(custom.pk), str(admin_role.pk)],
            "post": "yes",
        },
        follow=True,
    )

    assert b"Nothing was deleted: The admin role is one the service relies on" in bulk.content
    assert Group.objects.filter(name__in=["admin", "reviewer"]).count() == 2  # all or nothing
    assert not OutboxEvent.objects.filter(key="role_changed").exists()


def test_a_role_renamed_or_added_in_the_admin_goes_through_the_role_services(superuser_client, root):
    reviewer = role("reviewer")
    holder = holder_of("reviewer")

    renamed = superuser_client.post(f"{GROUPS}{reviewer.pk}/change/", {"name": "critic"})
    added = superuser_client.post(f"{GROUPS}add/", {"name": "editor"})

    assert renamed.status_code == 302, renamed.content.decode()[:2000]
    assert added.status_code == 302, added.content.decode()[:2000]
    assert holder.get(ME).json()["roles"] == ["critic", "user"]
    [event] = role_changes(holder.user)
    assert (event["roles"], event["previous_roles"]) == (["critic", "user"], ["reviewer", "user"])
    names = {r["name"]: r["description"] for r in holder.get("/api/v1/roles").json()}
    assert names["critic"] == "The reviewers."
    assert names["editor"] == ""
    assert Role.objects.filter(group__name="editor").exists()
    actions = set(
        AuditEvent.objects.filter(kind=AuditKind.ADMIN_ACTION, actor=root).values_list(
            "detail__action", flat=True
        )
    )
    assert {"role_renamed", "role_created"} <= actions


def test_users_cannot_be_deleted_in_the_admin(superuser_client, user):
    assert superuser_client.get(f"{USERS}{user.pk}/delete/").status_code == 403
    assert superuser_client.post(f"{USERS}{user.pk}/delete/", {"post": "yes"}).status_code == 403
    assert b'value="delete_selected"' not in superuser_client.get(USERS).content
    superuser_client.post(
        USERS, {"action": "delete_selected", "_selected_action": [str(user.pk)], "post": "yes"}
    )

    assert User.objects.filter(pk=user.pk, deleted_at__isnull=True).exists()


def test_the_user_actions_deactivate_and_soft_delete_through_the_services(superuser_client, root):
    sleepy, gone = holder_of(), holder_of()

    deactivated = superuser_client.post(
        USERS, {"action": "deactivate_users", "_selected_action": [str(sleepy.user.pk)]}, follow=True
    )
    deleted = superuser_client.post(
        USERS, {"action": "soft_delete_users", "_selected_action": [str(gone.user.pk)]}, follow=True
    )

    assert b"1 user(s) deactivated." in deactivated.content
    assert b"1 user(s) deleted." in deleted.content
    for client in (sleepy, gone):
        assert client.get(ME).status_code == 401  # the sessions ended at once
        assert not AuthSession.objects.active().filter(user=client.user).exists()
    sleepy.user.refresh_from_db()
    gone.user.refresh_from_db()
    assert not sleepy.user.is_active
    assert sleepy.user.deleted_at is None
    assert gone.user.deleted_at is not None
    assert AuditEvent.objects.get(user=sleepy.user, kind=AuditKind.DEACTIVATED).actor_id == root.id
    assert AuditEvent.objects.get(user=gone.user, kind=AuditKind.DELETED).actor_id == root.id
    assert OutboxEvent.objects.filter(key="user_deleted", payload__user_id=str(gone.user.id)).exists()
    # Soft: the restore action brings it back.
    superuser_client.post(USERS, {"action": "restore_users", "_selected_action": [str(gone.user.pk)]})
    gone.user.refresh_from_db()
    assert gone.user.deleted_at is None
