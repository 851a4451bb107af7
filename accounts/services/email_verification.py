"""Verified email addresses: the link mailed to an address, what using it does, and the mandatory mode.

The link is built like the reset link (Django's `PasswordResetTokenGenerator`: signed, expiring
after `PASSWORD_RESET_TIMEOUT`, no table of tokens). Its hash covers the password, the address,
the pending address and the verified flag, so a link works once (using it changes the flag or the
address), and stops working when the email changes again or the password changes.

- Registration and an administrator's create mail a link to the account's address
  (`email_verification_send_after_commit`).
- `PATCH /users/me` with a new address only records it as pending (`email_change_request`): the
  link goes to the new address, a notice to the old one, and only the link makes the change.
- `EMAIL_VERIFICATION=mandatory`: a correct password for an unverified address opens no session
  (`email_verification_check`, called after the password check at every door that opens one).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.after_commit import enqueue_after_commit
from core.errors import Conflict, Forbidden, ServiceError
from core.ids import Id
from notifications.mail import email_message
from notifications.models import Kind as NotificationKind
from notifications.models import Notification
from notifications.services import event_emit, notification_send

from .. import cache as auth_cache
from ..models import User, normalize_email
from ..signed_links import signed_link, signed_link_user
from .audit import AuditKind, audit_record

INVALID_LINK = "The verification link is invalid or has expired."


class _EmailVerificationTokens(PasswordResetTokenGenerator):
    """Reset-link tokens under their own salt, bound to the address state they were made for."""

    key_salt = "accounts.services.email_verification"

    def _make_hash_value(self, user: Any, timestamp: int) -> str:
        return f"{user.pk}{user.password}{user.email}{user.email_pending}{user.email_verified}{timestamp}"


email_verification_tokens = _EmailVerificationTokens()


class EmailUnverified(Forbidden):
    code = "email_unverified"


def email_verification_mandatory() -> bool:
    return str(settings.EMAIL_VERIFICATION) == "mandatory"


def email_verification_check(user: User) -> None:
    """After a correct password: with mandatory verification, an unverified address opens no session.

    An account without an address (an administrator made it so, or Telegram did) has nothing
    to verify and is not held back.
    """
    if email_verification_mandatory() and user.email and not user.email_verified:
        raise EmailUnverified(
            "Verify your email address first: follow the link we mailed you, "
            "or ask for a new one after logging in is possible (POST /auth/email/verify/resend)."
        )


def email_verification_target(user: User) -> str:
    """The address a link for this account goes to: the pending one, else an unverified current one."""
    if user.email_pending:
        return user.email_pending
    return "" if user.email_verified else user.email


def email_verification_link(user: User) -> str:
    return signed_link(str(settings.EMAIL_VERIFY_URL), user, email_verification_tokens)


def email_verification_send_after_commit(*, user_id: Id) -> None:
    """Queue the verification mail; the task reads the address itself (none travels through the broker)."""
    enqueue_after_commit("accounts.tasks.send_email_verification", str(user_id))


def email_verification_send(*, user_id: Id) -> bool:
    """Render and send the link to the account's unverified (or pending) address; True if a mail went."""
    user = User.objects.filter(id=user_id, is_active=True, deleted_at__isnull=True).first()
    target = email_verification_target(user) if user is not None else ""
    if user is None or not target:
        return False
    email_message(
        template="accounts/email/email_verification",
        subject="Confirm your email address",
        to=[target],
        context={"user": user, "link": email_verification_link(user), "email": target},
    ).send()
    return True


def email_verification_resend(*, user_id: Id) -> None:
    """`POST /auth/email/verify/resend`: a new link, if there is an address waiting for one."""
    user = User.objects.filter(id=user_id).first()
    if user is None or not email_verification_target(user):
        raise ServiceError("There is no address waiting for verification.", code="nothing_to_verify")
    email_verification_send_after_commit(user_id=user.id)


def email_verify(*, uid: str, token: str) -> User:
    """`POST /auth/email/verify`: the address is verified, or a pending address becomes the account's.

    Under the row lock, so a link used twice at once works once. A pending address that another
    account took meanwhile is refused (409 `email_taken`) and stays pending.
    """
    with transaction.atomic():
        user = signed_link_user(
            uid=uid, token=token, tokens=email_verification_tokens, invalid=INVALID_LINK, for_update=True
        )
        previous_email = user.email
        if user.email_pending:
            user.email, user.email_pending = user.email_pending, ""
        user.email_verified = True
        try:
            with transaction.atomic():  # the address's unique constraint says whether it is taken
                user.save(update_fields=["email", "email_pending", "email_verified", "updated_at"])
        except IntegrityError:
            raise _email_taken() from None
        changed = ["email", "email_verified"] if user.email != previous_email else ["email_verified"]
        event_emit(
            name="user_updated", payload={"user_id": str(user.id), **{f: getattr(user, f) for f in changed}}
        )
        audit_record(AuditKind.PROFILE_UPDATED, user_id=user.id, fields=changed, by="verification_link")
        auth_cache.refresh_user(user.id)
        if user.email != previous_email:
            email_changed_tell(user=user, previous_email=previous_email)
    return user


def _email_taken() -> Conflict:
    return Conflict(
        "Another account uses this address now; change your email to another one.", code="email_taken"
    )


def email_change_request(*, user: User, email: str) -> User:
    """The owner's new address waits for its link: recorded as pending, the link mailed to it, and
    the old address told. A second change replaces the pending one (its old link stops working).
    An address another account holds is refused now, as before (400 on `email`)."""
    email = normalize_email(email)
    with transaction.atomic():
        user = User.objects.select_for_update().get(id=user.id)
        if User.objects.filter(email=email).exclude(id=user.id).exists():
            raise ValidationError({"email": ["A user with this email already exists."]})
        if email == user.email:  # back to the current address: nothing waits any more
            email = ""
        if email == user.email_pending:
            return user
        user.email_pending = email
        user.save(update_fields=["email_pending", "updated_at"])
        audit_record(AuditKind.PROFILE_UPDATED, user_id=user.id, fields=["email_pending"])
        auth_cache.refresh_user(user.id)
        if email:
            email_verification_send_after_commit(user_id=user.id)
            _pending_change_tell(user=user)
    return user


def _pending_change_tell(*, user: User) -> None:
    notice = notification_send(
        user_id=user.id,
        kind=NotificationKind.SECURITY,
        title="A change of your email address was asked",
        body=f"Your account's email will become {user.email_pending} once the link mailed there is "
        "used. If it was not you, change your password at once: the address stays as it is until then.",
        data={"event": "email_change_requested", "email": user.email_pending, "previous_email": user.email},
        mail=False,  # the current address gets the notice below, once, whatever the preference
    )
    enqueue_after_commit("accounts.tasks.send_email_changed_notice", str(notice.id))


def email_changed_tell(*, user: User, previous_email: str) -> None:
    """The account's address changed: the user is told in-app, and the old address by mail."""
    notice = notification_send(
        user_id=user.id,
        kind=NotificationKind.SECURITY,
        title="Your email address was changed",
        body=f"The email address of your account is now {user.email} (it was {previous_email}). "
        "If it was not you, reset your password and tell us at once.",
        data={"event": "email_changed", "email": user.email, "previous_email": previous_email},
    )
    if previous_email:
        # The old address is read from the notification by the task: no address travels through the broker.
        enqueue_after_commit("accounts.tasks.send_email_changed_notice", str(notice.id))


#: The mail to the old address, by the notification's event: a change waiting for its link, or done.
_OLD_ADDRESS_MAILS = {
    "email_change_requested": (
        "accounts/email/email_change_requested",
        "A change of your email address was asked",
    ),
    "email_changed": ("accounts/email/email_changed", "The email address of your account was changed"),
}


def email_notice_send(*, notification_id: Id) -> None:
    """Mail the old address of an account about a change of its email (the notification names both)."""
    notice = Notification.objects.select_related("user").filter(id=notification_id).first()
    if notice is None or not notice.data.get("previous_email"):
        return
    template, subject = _OLD_ADDRESS_MAILS.get(
        notice.data.get("event", ""), _OLD_ADDRESS_MAILS["email_changed"]
    )
    email_message(
        template=template,
        subject=subject,
        to=[notice.data["previous_email"]],
        context={
            "user": notice.user,
            "email": notice.data["email"],
            "previous_email": notice.data["previous_email"],
        },
    ).send()
