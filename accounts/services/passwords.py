"""Password change, and reset by an emailed link (Django's token generator)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMultiAlternatives
from django.db import transaction

from core.after_commit import enqueue_after_commit
from core.errors import ServiceError
from core.ids import Id
from core.request_context import RequestMeta, current_request_meta, request_meta_of
from notifications.mail import email_message
from notifications.models import Kind as NotificationKind
from notifications.services import event_emit, notification_send

from .. import cache as auth_cache
from ..models import User
from ..signed_links import signed_link, signed_link_user
from ..user_checks import password_validate
from .audit import AuditKind, audit_record
from .credentials import password_confirm
from .lockout import lockout_unlock_user
from .reauth import reauth_required, session_is_recent
from .sessions import sessions_revoke_all
from .users import user_get


def _new_password_hash(user: User, new_password: str) -> str:
    """The validated password's hash, made before the caller's transaction opens.

    A bcrypt hash takes ~200 ms of CPU: made inside the transaction, it would
    hold the user's row lock that long, and on the embedded SQLite the
    database's one write lock (every other writer waits).
    """
    password_validate(
        new_password, username=user.username, email=user.email, full_name=user.full_name, field="new_password"
    )
    return make_password(new_password)


def _store_password(user: User, encoded: str) -> None:
    user.password = encoded
    user.save(update_fields=["password", "updated_at"])


def password_change(*, user_id: Id, session_id: Id | None, old_password: str, new_password: str) -> None:
    """Change the password; every other session of the user ends.

    The old password is checked under the login's lockout, before (and outside)
    the change's transaction, so a wrong guess is counted even though the change is refused.
    """
    user = user_get(user_id=user_id)
    password_confirm(user=user, password=old_password, field="old_password")
    encoded = _new_password_hash(user, new_password)
    with transaction.atomic():
        user = user_get(user_id=user_id, for_update=True)
        _store_password(user, encoded)
        sessions_revoke_all(user_id=user.id, reason="password_changed", except_session_id=session_id)
        audit_record(AuditKind.PASSWORD_CHANGED, user_id=user.id)
        _notify_password_changed(user.id)


def password_set(*, user_id: Id, password: str | None, actor_id: Id | None = None) -> User:
    """An administrator sets a user's password (`None`: no password login at all).

    Every session of the user ends (whoever held them no longer knows the
    password), the change is audited with its actor, and the user is told.
    The caller validated the password already (the Django admin's form does).
    The hash is made before the transaction (`_new_password_hash` says why).
    """
    encoded = make_password(password)
    with transaction.atomic():
        return _password_set(user_id=user_id, encoded=encoded, usable=password is not None, actor_id=actor_id)


def _password_set(*, user_id: Id, encoded: str, usable: bool, actor_id: Id | None) -> User:
    user = user_get(user_id=user_id, for_update=True)
    _store_password(user, encoded)
    revoked = sessions_revoke_all(user_id=user.id, reason="password_set", actor_id=actor_id)
    audit_record(
        AuditKind.PASSWORD_CHANGED,
        user_id=user.id,
        actor_id=actor_id,
        by="administrator",
        usable=usable,
        sessions_revoked=revoked,
    )
    notification_send(
        user_id=user.id,
        kind=NotificationKind.SECURITY,
        title="Your password was set by an administrator",
        body="An administrator set a new password for your account and ended all your sessions. "
        "Log in with the password you were given, or reset it.",
        data={"event": "password_set"},
    )
    return user


def password_first_set(*, user_id: Id, session_id: Id | None, new_password: str) -> None:
    """`POST /auth/password/set`: a first password for an account made by social login.

    Only without a usable password (400 `password_already_set`: changing one is
    `password_change`, which asks for it), and only from a fresh session (403
    `reauth_required`), since nothing else proves the caller. It adds a way in rather than
    replacing one, so no other session ends; it is audited and the user is told.
    """
    user = user_get(user_id=user_id)
    if user.has_usable_password():
        raise _password_already_set()
    if not session_is_recent(user_id=user.id, session_id=session_id):
        raise reauth_required()
    encoded = _new_password_hash(user, new_password)
    with transaction.atomic():
        user = user_get(user_id=user_id, for_update=True)
        if user.has_usable_password():  # two calls at once: the second finds the first's password
            raise _password_already_set()
        _store_password(user, encoded)
        audit_record(AuditKind.PASSWORD_CHANGED, user_id=user.id, by="owner", first_password=True)
        notification_send(
            user_id=user.id,
            kind=NotificationKind.SECURITY,
            title="A password was set for your account",
            body="You can now also log in with your username or email and this password. "
            "If it was not you, reset your password at once.",
            data={"event": "password_first_set"},
        )


def _password_already_set() -> ServiceError:
    return ServiceError(
        "This account has a password already: change it with POST /auth/password/change.",
        code="password_already_set",
    )


def _notify_password_changed(user_id: Id) -> None:
    notification_send(
        user_id=user_id,
        kind=NotificationKind.SECURITY,
        title="Your password was changed",
        body="Your password was changed and your other sessions were ended. "
        "If it was not you, reset your password at once.",
        data={"event": "password_changed"},
    )


def password_reset_request(*, email: str) -> None:
    """Queue the reset for any address: the request path is the same whether or not it is known.

    A known address used to cost an audit row and a mail inside the request
    (9.6 ms against 4.9 ms for an unknown one): timing told which addresses
    have accounts. Now the request only queues one task with the address as
    typed; the lookup, the audit row and the mail are the task's
    (`password_reset_process`), which does the same work for both but the
    final send. No token is made here: no secret travels through the broker.
    """
    meta = current_request_meta()
    ip, agent = (meta.ip, meta.user_agent) if meta else (None, "")
    enqueue_after_commit("accounts.tasks.process_password_reset", email, ip, agent)


def password_reset_process(*, email: str, ip: str | None = None, user_agent: str = "") -> bool:
    """The task's half of a reset request; True when a mail went out.

    An unknown, inactive or deleted address costs what a known one does (the
    lookup, an audit row, rendering the mail and building its MIME message),
    and only the hand-over to the mail backend is skipped. In the embedded
    default this task runs inside the request, so the work must match; with a
    broker it runs in a worker, off the request path altogether. The audit
    row carries the address and agent of the request that asked.
    """
    user = None
    if "@" in email:
        user = User.objects.by_login(email).filter(is_active=True, deleted_at__isnull=True).first()
    with request_meta_of(RequestMeta(ip, user_agent)):
        audit_record(
            AuditKind.PASSWORD_RESET_REQUESTED, user_id=user.id if user else None, known=user is not None
        )
    # A stand-in for an unknown address, so both paths render the same mail
    # (an unusable password: the token it signs opens nothing).
    stand_in = User(email=email, username="unknown")
    stand_in.set_unusable_password()
    message = _reset_message(user or stand_in)
    if user is None:
        message.message().as_bytes()  # what a backend does with a message before it writes it out
        return False
    message.send()
    return True


def password_reset_link(user: User) -> str:
    return signed_link(str(settings.PASSWORD_RESET_URL), user, default_token_generator)


def _reset_message(user: User) -> EmailMultiAlternatives:
    context = {"user": user, "link": password_reset_link(user)}
    return email_message(
        template="accounts/email/password_reset",
        subject="Reset your password",
        to=[user.email],
        context=context,
    )


def password_reset_send(*, user_id: Id) -> None:
    """Render and send the reset mail (text and HTML) to a live account."""
    user = User.objects.filter(id=user_id, is_active=True, deleted_at__isnull=True).first()
    if user is None:
        return
    _reset_message(user).send()


INVALID_LINK = "The reset link is invalid or has expired."


def _reset_link_user(*, uid: str, token: str, for_update: bool = False) -> User:
    """The user a reset link is for, while the link is valid; `ServiceError` otherwise."""
    return signed_link_user(
        uid=uid, token=token, tokens=default_token_generator, invalid=INVALID_LINK, for_update=for_update
    )


def password_reset_confirm(*, uid: str, token: str, new_password: str) -> None:
    """Set a new password from a reset link; every session ends and any lockout lifts.

    The link is checked, the new password hashed outside the transaction
    (`_new_password_hash`), and the link checked again under the row lock:
    a link used meanwhile no longer matches the changed hash and is refused.
    """
    encoded = _new_password_hash(_reset_link_user(uid=uid, token=token), new_password)
    with transaction.atomic():
        _reset_confirm(_reset_link_user(uid=uid, token=token, for_update=True), encoded)


def _reset_confirm(user: User, encoded: str) -> None:
    # The link was mailed to this address (the token covers it): using it proves the address.
    verified_now = bool(user.email) and not user.email_verified
    user.email_verified = user.email_verified or bool(user.email)
    user.password = encoded
    user.save(update_fields=["password", "email_verified", "updated_at"])  # the link cannot work twice
    if verified_now:
        event_emit(name="user_updated", payload={"user_id": str(user.id), "email_verified": True})
        auth_cache.refresh_user(user.id)
    sessions_revoke_all(user_id=user.id, reason="password_reset")
    lockout_unlock_user(user_id=user.id)
    audit_record(AuditKind.PASSWORD_RESET, user_id=user.id)
    _notify_password_changed(user.id)
