"""Role-change requests: a user asks, an administrator decides once (API or Django admin)."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import Forbidden, NotFound, ServiceError
from core.ids import Id
from notifications.models import Kind as NotificationKind
from notifications.services import notification_send

from ..models import RoleRequest, User
from .audit import AuditKind, audit_record
from .users import user_get, user_set_roles

Status = RoleRequest.Status


def _role_request(request_id: Id, **scope: Id) -> RoleRequest:
    """The request with this id (within `scope`, e.g. the owner's), or `NotFound`."""
    try:
        found = RoleRequest.objects.select_related("role").filter(id=request_id, **scope).first()
    except (ValidationError, ValueError):  # not a UUID
        found = None
    if found is None:
        raise NotFound("Role request not found.")
    return found


@transaction.atomic
def role_request_create(*, user_id: Id, role: str, reason: str = "") -> RoleRequest:
    group = Group.objects.filter(name=role).first()
    if group is None:
        raise ValidationError({"role": [f"Unknown role: {role}."]})
    if User.objects.filter(id=user_id, groups=group).exists():
        raise ServiceError("You have this role already.", code="role_held")
    if RoleRequest.objects.filter(user_id=user_id, status=Status.PENDING).exists():
        raise ServiceError("You have a pending role request already.", code="pending_exists")
    try:
        with transaction.atomic():
            return RoleRequest.objects.create(user_id=user_id, role=group, reason=reason)
    except IntegrityError:  # a second request raced the check above
        raise ServiceError("You have a pending role request already.", code="pending_exists") from None


@transaction.atomic
def role_request_cancel(*, request_id: Id, user_id: Id) -> RoleRequest:
    request = _role_request(request_id, user_id=user_id)
    if not RoleRequest.objects.filter(id=request_id, status=Status.PENDING).update(
        status=Status.CANCELLED, decided_at=timezone.now(), decided_by_id=user_id
    ):
        raise ServiceError("Only a pending request can be cancelled.", code="not_pending")
    request.refresh_from_db()
    return request


@transaction.atomic
def _decide(*, request_id: Id, admin_id: Id, approve: bool, comment: str) -> RoleRequest:
    request = _role_request(request_id)
    if str(request.user_id) == str(admin_id):
        raise Forbidden("You cannot decide your own request.", code="own_request")
    # The conditional update decides: of two admins at once, exactly one changes the row.
    won = RoleRequest.objects.filter(id=request_id, status=Status.PENDING).update(
        status=Status.APPROVED if approve else Status.REJECTED,
        decided_at=timezone.now(),
        decided_by_id=admin_id,
        comment=comment,
    )
    if not won:
        raise ServiceError("This request was decided already.", code="not_pending")
    role = request.role.name
    if approve:
        user = user_get(user_id=request.user_id, for_update=True)
        user_set_roles(user=user, roles=[*user.roles, role], actor_id=admin_id, notify_user=False)
    audit_record(
        AuditKind.ADMIN_ACTION,
        user_id=request.user_id,
        actor_id=admin_id,
        action="role_request_approved" if approve else "role_request_rejected",
        role=role,
        request_id=str(request.id),
    )
    verdict = "approved" if approve else "rejected"
    notification_send(
        user_id=request.user_id,
        kind=NotificationKind.ROLE_REQUEST,
        title=f"Your request for the {role} role was {verdict}",
        body=comment,
        data={"request_id": str(request.id), "role": role, "status": verdict},
    )
    request.refresh_from_db()
    return request


def role_request_approve(*, request_id: Id, admin_id: Id, comment: str = "") -> RoleRequest:
    return _decide(request_id=request_id, admin_id=admin_id, approve=True, comment=comment)


def role_request_reject(*, request_id: Id, admin_id: Id, comment: str = "") -> RoleRequest:
    return _decide(request_id=request_id, admin_id=admin_id, approve=False, comment=comment)
