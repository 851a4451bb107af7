"""Roles themselves (Django groups): create, rename, describe, delete.

A role's holders see a rename or a delete as a change of their roles, so each
holder gets what `user_set_roles` gives any role change: `role_changed`, an
audit row, a fresh cached user. The roles the service relies on
(`DEFAULT_ROLES`: every account's `user`, the `admin` that opens the
back-office) are neither renamed nor deleted; `GET /roles` forgets its cached
list after every change.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction

from core.errors import NotFound, ServiceError
from core.ids import Id
from notifications.services import event_emit

from .. import cache as auth_cache
from ..models import DEFAULT_ROLES, ROLE_USER, Role, User
from ..selectors import ROLES, ROLES_ALL
from .admins import admins_kept
from .audit import AuditKind, audit_record
from .users import user_set_roles


def _role(group_id: int) -> Group:
    group = Group.objects.select_for_update().filter(id=group_id).first()
    if group is None:
        raise NotFound("Role not found.")
    return group


def _refuse_builtin(name: str, verb: str) -> None:
    if name in DEFAULT_ROLES:
        raise ServiceError(
            f"The {name} role is one the service relies on; it cannot be {verb}.", code="role_protected"
        )


def _check_name(name: str, *, exclude_id: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise ValidationError({"name": ["A role needs a name."]})
    others = Group.objects.exclude(id=exclude_id) if exclude_id is not None else Group.objects.all()
    if others.filter(name=name).exists():
        raise ValidationError({"name": ["A role with that name already exists."]})
    return name


@transaction.atomic
def role_create(
    *,
    name: str,
    description: str = "",
    permissions: Iterable[Permission] = (),
    actor_id: Id | None = None,
) -> Group:
    """A new role, with its description row (shown by `GET /roles`)."""
    group = Group.objects.create(name=_check_name(name))
    group.permissions.set(list(permissions))
    Role.objects.create(group=group, description=description)
    audit_record(AuditKind.ADMIN_ACTION, actor_id=actor_id, action="role_created", role=group.name)
    ROLES.write_after_commit(ROLES_ALL)
    return group


@transaction.atomic
def role_update(
    *,
    group_id: int,
    name: str,
    permissions: Iterable[Permission] | None = None,
    actor_id: Id | None = None,
) -> Group:
    """Rename a role (and set its permissions); each holder's roles change with the name."""
    group = _role(group_id)
    previous = group.name
    name = _check_name(name, exclude_id=group.id)
    if permissions is not None:
        group.permissions.set(list(permissions))
    if name == previous:
        return group
    _refuse_builtin(previous, "renamed")
    holders = list(User.objects.filter(groups=group).prefetch_related("groups").order_by("id"))
    group.name = name
    group.save(update_fields=["name"])
    for user in holders:
        before = sorted(g.name for g in user.groups.all())
        after = sorted(name if role == previous else role for role in before)
        event_emit(
            name="role_changed", payload={"user_id": str(user.id), "roles": after, "previous_roles": before}
        )
        audit_record(
            AuditKind.ROLE_CHANGED, user_id=user.id, actor_id=actor_id, roles=after, previous_roles=before
        )
        auth_cache.refresh_user(user.id)
    audit_record(
        AuditKind.ADMIN_ACTION,
        actor_id=actor_id,
        action="role_renamed",
        role=name,
        previous_name=previous,
        holders=len(holders),
    )
    ROLES.write_after_commit(ROLES_ALL)
    return group


@transaction.atomic
def role_describe(*, group_id: int, description: str, actor_id: Id | None = None) -> Role:
    """Set the description `GET /roles` shows for a role."""
    group = _role(group_id)
    role, _ = Role.objects.update_or_create(group=group, defaults={"description": description})
    audit_record(AuditKind.ADMIN_ACTION, actor_id=actor_id, action="role_described", role=group.name)
    ROLES.write_after_commit(ROLES_ALL)
    return role


@transaction.atomic
def role_delete(*, group_id: int, actor_id: Id | None = None) -> int:
    """Delete a role: each holder loses it through `user_set_roles`, then the role goes.

    So every holder gets `role_changed`, an audit row, a notification and a
    fresh cached user, as if an administrator had edited them one by one; an
    account left without a role keeps `user`. Returns how many held it.
    """
    with admins_kept():  # the admins' lock before the holders' rows
        group = _role(group_id)
        _refuse_builtin(group.name, "deleted")
        holders = list(
            User.objects.filter(groups=group)
            .select_for_update(of=("self",))
            .prefetch_related("groups")
            .order_by("id")
        )
        for user in holders:
            remaining = [role for role in user.roles if role != group.name]
            user_set_roles(user=user, roles=remaining or [ROLE_USER], actor_id=actor_id)
        name = group.name
        group.delete()  # its description and the requests for it go with it (cascade)
        audit_record(
            AuditKind.ADMIN_ACTION, actor_id=actor_id, action="role_deleted", role=name, holders=len(holders)
        )
    ROLES.write_after_commit(ROLES_ALL)
    return len(holders)
