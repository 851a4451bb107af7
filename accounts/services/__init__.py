"""Business rules for accounts, one module per concern; import them from here.

Views, admin actions, management commands and tasks all call these
functions, so every path has the same effects (cache, sessions, events,
audit). Field problems are raised as Django `ValidationError`s with a
message dict; everything else as `core.errors.ServiceError`.
"""

from .admins import LastAdmin, admins_active, admins_kept
from .audit import AuditKind, audit_record
from .credentials import password_confirm
from .email_verification import (
    email_change_request,
    email_notice_send,
    email_verification_resend,
    email_verification_send,
    email_verify,
)
from .lockout import LOGIN_FAILED, lockout_unlock_user
from .passwords import (
    password_change,
    password_first_set,
    password_reset_confirm,
    password_reset_process,
    password_reset_request,
    password_reset_send,
    password_set,
)
from .role_requests import role_request_approve, role_request_cancel, role_request_create, role_request_reject
from .roles import role_create, role_delete, role_describe, role_update
from .sessions import (
    TokenPair,
    access_token_verify,
    session_is_live,
    session_login,
    session_open,
    session_refresh,
    session_revoke,
    session_touch,
    sessions_revoke_all,
)
from .users import (
    admin_ensure,
    new_user_fields,
    new_user_payload,
    user_admin_update,
    user_create,
    user_delete_self,
    user_get,
    user_hard_delete,
    user_register,
    user_restore,
    user_restore_self,
    user_set_active,
    user_set_roles,
    user_soft_delete,
    user_update,
    user_update_self,
    users_purge_deleted,
)

__all__ = [
    "LOGIN_FAILED",
    "AuditKind",
    "LastAdmin",
    "TokenPair",
    "access_token_verify",
    "admin_ensure",
    "admins_active",
    "admins_kept",
    "audit_record",
    "email_change_request",
    "email_notice_send",
    "email_verification_resend",
    "email_verification_send",
    "email_verify",
    "lockout_unlock_user",
    "new_user_fields",
    "new_user_payload",
    "password_change",
    "password_confirm",
    "password_first_set",
    "password_reset_confirm",
    "password_reset_process",
    "password_reset_request",
    "password_reset_send",
    "password_set",
    "role_create",
    "role_delete",
    "role_describe",
    "role_request_approve",
    "role_request_cancel",
    "role_request_create",
    "role_request_reject",
    "role_update",
    "session_is_live",
    "session_login",
    "session_open",
    "session_refresh",
    "session_revoke",
    "session_touch",
    "sessions_revoke_all",
    "user_admin_update",
    "user_create",
    "user_delete_self",
    "user_get",
    "user_hard_delete",
    "user_register",
    "user_restore",
    "user_restore_self",
    "user_set_active",
    "user_set_roles",
    "user_soft_delete",
    "user_update",
    "user_update_self",
    "users_purge_deleted",
]
