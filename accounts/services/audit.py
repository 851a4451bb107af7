"""The audit log of security events."""

from __future__ import annotations

from typing import Any

from core.ids import Id
from core.request_context import current_request_meta

from ..models import AuditEvent

#: What an audit row records (`notifications.models.Kind` is the unrelated kind of a notification).
AuditKind = AuditEvent.Kind


def audit_fields(
    kind: str, *, user_id: Id | None = None, actor_id: Id | None = None, **detail: Any
) -> dict[str, Any]:
    """One audit row's column values, with the current request's address and user agent.

    `detail` is small JSON: ids, reasons, field names. Never a password or a token.
    """
    meta = current_request_meta()
    return {
        "kind": kind,
        "user_id": user_id,
        "actor_id": actor_id,
        "ip": meta.ip if meta else None,
        "user_agent": meta.user_agent if meta else "",
        "detail": detail,
    }


def audit_record(
    kind: str, *, user_id: Id | None = None, actor_id: Id | None = None, **detail: Any
) -> AuditEvent:
    """Write one audit row (`audit_fields`); bulk writers copy many rows built the same way."""
    return AuditEvent.objects.create(**audit_fields(kind, user_id=user_id, actor_id=actor_id, **detail))
