"""Accounts: create, update, roles, activity, soft and hard delete, restore, purge, first admin.

Every change that other services care about stores its event in the same
transaction (`notifications.services.event_emit`); every change to what the
auth cache holds refreshes it after commit.
"""

from __future__ import annotations

import secrets
import sys
import uuid
from collections.abc import Collection, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from core.errors import AuthenticationFailed, NotFound, ServiceError
from core.ids import Id
from notifications.models import Kind as NotificationKind
from notifications.services import event_emit, notification_send

from .. import cache as auth_cache
from ..models import ROLE_ADMIN, ROLE_USER, User, normalize_email, user_is_admin
from ..tokens import AMR_PASSWORD
from ..user_checks import password_validate
from .admins import admins_kept
from .audit import AuditKind, audit_record
from .credentials import password_verify
from .email_verification import (
    email_change_request,
    email_changed_tell,
    email_verification_check,
    email_verification_send_after_commit,
)
from .lockout import LOGIN_FAILED, lockout_check, lockout_key, lockout_record_failure, lockout_reset
from .mfa_challenges import PURPOSE_RESTORE, mfa_challenge_demand
from .reauth import reauth_confirm
from .sessions import sessions_revoke_all


def _check_unique(*, username: str | None, email: str | None, exclude_id: Id | None = None) -> None:
    errors: dict[str, list[str]] = {}
    others = User.objects.exclude(id=exclude_id) if exclude_id else User.objects.all()
    if username is not None and others.alias(u=Lower("username")).filter(u=username.lower()).exists():
        errors["username"] = ["A user with that username already exists."]
    if email and others.filter(email=email).exists():  # blank is "no address", never a clash
        errors["email"] = ["A user with that email already exists."]
    if errors:
        raise ValidationError(errors)


def _resolve_groups(roles: Iterable[str]) -> list[Group]:
    names = sorted(set(roles))
    groups = list(Group.objects.filter(name__in=names))
    missing = sorted(set(names) - {g.name for g in groups})
    if missing:
        raise ValidationError({"roles": [f"Unknown role: {name}." for name in missing]})
    return groups


def _save_unique(user: User, **kwargs: Any) -> None:
    """Save; a unique index that fires anyway (a race) is a field error, not a 500."""
    try:
        with transaction.atomic():
            user.save(**kwargs)
    except IntegrityError:
        _check_unique(username=user.username, email=user.email, exclude_id=user.id)
        raise


def new_user_fields(
    *,
    username: str,
    email: str,
    password_hash: str,
    roles: Collection[str],
    full_name: str = "",
    is_active: bool = True,
    is_superuser: bool = False,
    email_verified: bool = False,
) -> dict[str, Any]:
    """A new account's column values: what `user_create` saves, and bulk create copies by the thousand.

    `password_hash` is encoded already (`make_password`); the `admin` role
    brings the Django admin (`is_staff`), as `user_set_roles` keeps it.
    """
    now = timezone.now()
    return {
        "id": uuid.uuid4(),
        "username": username,
        "email": normalize_email(email),
        "full_name": full_name,
        "password": password_hash,
        "is_active": is_active,
        "is_superuser": is_superuser,
        "is_staff": user_is_admin(is_superuser=is_superuser, roles=roles),
        "email_verified": email_verified,
        "created_at": now,
        "updated_at": now,
    }


def new_user_payload(user: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of the `new_user` event (API.md → Events), from `new_user_fields`."""
    return {
        "user_id": str(user["id"]),
        "username": user["username"],
        "full_name": user["full_name"],
        "email": user["email"],
        "email_verified": user["email_verified"],
        "created_at": user["created_at"].isoformat(),
    }


def user_create(
    *,
    username: str,
    email: str,
    password: str | None,
    full_name: str = "",
    roles: Iterable[str] | None = None,
    is_active: bool = True,
    is_superuser: bool = False,
    validate_password: bool = True,
    actor_id: Id | None = None,
    email_verified: bool = False,
) -> User:
    """Create an account with its roles (`user` when none are given).

    An administrator's create (`actor_id`) mails a verification link to an unverified address;
    the commands and the first admin do not (their operator vouches for the address, or not).
    """
    user, groups, fields = _user_prepare(
        username=username,
        email=email,
        password=password,
        full_name=full_name,
        roles=roles,
        is_active=is_active,
        is_superuser=is_superuser,
        validate_password=validate_password,
        email_verified=email_verified,
    )
    with transaction.atomic():
        _user_insert(user, groups, fields, actor_id=actor_id)
        if actor_id is not None and user.email and not email_verified:
            email_verification_send_after_commit(user_id=user.id)
    return user


def _user_prepare(
    *,
    username: str,
    email: str,
    password: str | None,
    full_name: str,
    roles: Iterable[str] | None,
    is_active: bool,
    is_superuser: bool,
    validate_password: bool,
    email_verified: bool = False,
) -> tuple[User, list[Group], dict[str, Any]]:
    """Validate and hash, before any write transaction opens.

    Hashing costs ~250 ms, and on the embedded default (SQLite) a write
    transaction holds the database's one write lock: hashed inside it, a few
    registrations at once queued every other writer past its busy timeout.
    """
    email = normalize_email(email)
    _check_unique(username=username, email=email)
    if password is not None and validate_password:
        password_validate(password, username=username, email=email, full_name=full_name)
    groups = _resolve_groups(roles or [ROLE_USER])
    fields = new_user_fields(
        username=username,
        email=email,
        full_name=full_name,
        password_hash=make_password(password),  # None gives an unusable password
        roles=[group.name for group in groups],
        is_active=is_active,
        is_superuser=is_superuser,
        email_verified=email_verified,
    )
    return User(**fields), groups, fields


def _user_insert(user: User, groups: list[Group], fields: dict[str, Any], *, actor_id: Any = None) -> User:
    _save_unique(user, force_insert=True)
    user.groups.set(groups)
    event_emit(name="new_user", payload=new_user_payload(fields))
    audit_record(AuditKind.REGISTERED, user_id=user.id, actor_id=actor_id)
    return user


def user_register(*, username: str, email: str, password: str, full_name: str = "") -> User:
    """Self-service sign-up: the account, a welcome notification, and a link to verify the address."""
    user, groups, fields = _user_prepare(
        username=username,
        email=email,
        password=password,
        full_name=full_name,
        roles=None,
        is_active=True,
        is_superuser=False,
        validate_password=True,
    )
    with transaction.atomic():
        _user_insert(user, groups, fields)
        notification_send(
            user_id=user.id,
            kind=NotificationKind.WELCOME,
            title="Welcome!",
            body=f"Your account {user.username} is ready. Log in to start.",
        )
        email_verification_send_after_commit(user_id=user.id)
    return user


def _user(user_id: Id, *, for_update: bool = False) -> User:
    """The user with this id, or the domain's 404 (also for an id that is not a UUID)."""
    users = User.objects.select_for_update() if for_update else User.objects.all()
    try:
        return users.get(id=user_id)
    except (User.DoesNotExist, ValidationError, ValueError):
        raise NotFound("User not found.") from None


def user_get(*, user_id: Id, for_update: bool = False) -> User:
    """A user by id (row-locked with `for_update`, inside a transaction); `NotFound` if none."""
    return _user(user_id, for_update=for_update)


@transaction.atomic
def user_update(
    *,
    user_id: Id,
    username: str | None = None,
    email: str | None = None,
    full_name: str | None = None,
    actor_id: Id | None = None,
) -> User:
    """The profile fields (the owner's `PATCH /users/me`, an administrator's edit).

    A new email takes effect at once (an administrator's change; the owner's waits for its link,
    `user_update_self`), is unverified until its link is used (one is mailed to it), and is
    announced to the old address (mail) and to the user (in-app): if someone else moved the
    account, its owner hears of it where they still read.
    """
    user = _user(user_id, for_update=True)
    if email is not None:
        email = normalize_email(email)
    _check_unique(
        username=username if username is not None and username.lower() != user.username.lower() else None,
        email=email if email is not None and email != user.email else None,
        exclude_id=user.id,
    )
    previous_email = user.email
    changed = []
    for field, value in (("username", username), ("email", email), ("full_name", full_name)):
        if value is not None and getattr(user, field) != value:
            setattr(user, field, value)
            changed.append(field)
    if "email" in changed:
        user.email_verified, user.email_pending = False, ""
        changed += ["email_verified", "email_pending"]
    if changed:
        _save_unique(user, update_fields=[*changed, "updated_at"])
        shown = [f for f in changed if f != "email_pending"]  # the other services never see a pending address
        event_emit(
            name="user_updated", payload={"user_id": str(user.id), **{f: getattr(user, f) for f in shown}}
        )
        audit_record(AuditKind.PROFILE_UPDATED, user_id=user.id, actor_id=actor_id, fields=changed)
        auth_cache.refresh_user(user.id)
    if "email" in changed:
        email_changed_tell(user=user, previous_email=previous_email)
        if user.email:
            email_verification_send_after_commit(user_id=user.id)
    return user


def user_update_self(
    *,
    user_id: Id,
    username: str | None = None,
    email: str | None = None,
    full_name: str | None = None,
    current_password: str | None = None,
    session_id: Id | None = None,
) -> User:
    """`PATCH /users/me`. A new email needs re-authentication (`reauth_confirm`).

    Else a stolen access token plus a password reset sent to the new address
    would take the account for good. With a password, it is the current one,
    checked under the lockout (400 when missing or wrong); an account without
    one (social login) needs a recent session (403 `reauth_required`).

    The new address itself waits for its link (`email_change_request`): until it is used the
    account's email stays as it was, and `email_pending` shows the new one.
    """
    user = _user(user_id)
    if email is not None and normalize_email(email) not in (user.email, user.email_pending):
        if user.has_usable_password() and not current_password:
            raise ValidationError(
                {"current_password": ["Your current password is required to change the email."]}
            )
        reauth_confirm(user=user, session_id=session_id, password=current_password)
    if email is not None:
        email_change_request(user=user, email=email)
    return user_update(user_id=user.id, username=username, full_name=full_name)


@transaction.atomic
def user_admin_update(
    *,
    user_id: Id,
    actor_id: Id | None = None,
    is_active: bool | None = None,
    is_superuser: bool | None = None,
    roles: Iterable[str] | None = None,
    username: str | None = None,
    email: str | None = None,
    full_name: str | None = None,
) -> User:
    """An administrator's edit: the profile fields, activity, roles (and, in the Django admin, superuser).

    An edit that could take away someone's administration is refused (`last_admin`,
    nothing changed) when it would leave no active administrator.
    """
    may_remove_admin = is_active is False or is_superuser is False or roles is not None
    guard: AbstractContextManager[None] = admins_kept() if may_remove_admin else nullcontext()
    with guard:  # before `user_update` locks the row: the admins' lock comes first
        user = user_update(
            user_id=user_id, actor_id=actor_id, username=username, email=email, full_name=full_name
        )
        if is_superuser is not None and is_superuser != user.is_superuser:
            _set_superuser(user=user, is_superuser=is_superuser, actor_id=actor_id)
        if roles is not None:
            user_set_roles(user=user, roles=roles, actor_id=actor_id)
        deactivate_deleted = is_active is False and user.deleted_by_owner
        if is_active is not None and (is_active != user.is_active or deactivate_deleted):
            user_set_active(user=user, is_active=is_active, actor_id=actor_id)
    return user


def _set_superuser(*, user: User, is_superuser: bool, actor_id: Id | None) -> None:
    with nullcontext() if is_superuser else admins_kept():
        user.is_superuser = is_superuser
        user.is_staff = user_is_admin(is_superuser=is_superuser, roles=user.roles)
        user.save(update_fields=["is_superuser", "is_staff", "updated_at"])
        event_emit(name="user_updated", payload={"user_id": str(user.id), "is_superuser": is_superuser})
        audit_record(
            AuditKind.ADMIN_ACTION,
            user_id=user.id,
            actor_id=actor_id,
            action="superuser_granted" if is_superuser else "superuser_revoked",
        )
    auth_cache.refresh_user(user.id)


@transaction.atomic
def user_set_roles(
    *, user: User, roles: Iterable[str], actor_id: Id | None = None, notify_user: bool = True
) -> User:
    """Replace the user's roles; `admin` brings the Django admin (`is_staff`) with it.

    Emits `role_changed`, audits, and tells the user (unless the caller does,
    as a role-request decision does).
    """
    groups = _resolve_groups(roles)
    before = user.roles
    after = sorted(g.name for g in groups)
    # Only a change that takes `admin` away takes the admins' lock: an approval that adds
    # a role holds the user's row already, and the lock comes before row locks.
    taken = ROLE_ADMIN in before and ROLE_ADMIN not in after
    with admins_kept() if taken else nullcontext():
        user.groups.set(groups)
        is_staff = user_is_admin(is_superuser=user.is_superuser, roles=after)
        if is_staff != user.is_staff:
            user.is_staff = is_staff
            user.save(update_fields=["is_staff", "updated_at"])
    if before != after:
        event_emit(
            name="role_changed", payload={"user_id": str(user.id), "roles": after, "previous_roles": before}
        )
        audit_record(
            AuditKind.ROLE_CHANGED, user_id=user.id, actor_id=actor_id, roles=after, previous_roles=before
        )
        if notify_user:
            notification_send(
                user_id=user.id,
                kind=NotificationKind.SECURITY,
                title="Your roles changed",
                body=f"Your roles are now: {', '.join(after)}.",
                data={"event": "role_changed", "roles": after, "previous_roles": before},
            )
    auth_cache.refresh_user(user.id)
    return user


@transaction.atomic
def user_set_active(*, user: User, is_active: bool, actor_id: Id | None = None) -> User:
    """Deactivation ends every session at once; reactivation opens none.

    Deactivating is an administrator's decision: an account its owner had
    deleted is then no longer theirs to restore.
    """
    with nullcontext() if is_active else admins_kept():
        user.is_active = is_active
        fields = ["is_active", "updated_at"]
        if not is_active and user.deleted_by_owner:
            user.deleted_by_owner = False
            fields.append("deleted_by_owner")
        user.save(update_fields=fields)
    if not is_active:
        sessions_revoke_all(user_id=user.id, reason="deactivated", actor_id=actor_id)
    event_emit(name="user_updated", payload={"user_id": str(user.id), "is_active": is_active})
    audit_record(
        AuditKind.ACTIVATED if is_active else AuditKind.DEACTIVATED, user_id=user.id, actor_id=actor_id
    )
    auth_cache.refresh_user(user.id)
    return user


@transaction.atomic
def user_soft_delete(*, user_id: Id, actor_id: Id | None = None, by_owner: bool = False) -> User:
    """Mark deleted and inactive, end every session; restorable for `ACCOUNT_RESTORE_DAYS`.

    Only by an administrator, unless `by_owner` (`DELETE /users/me`): a ban
    is a ban, so `/auth/restore` undoes the owner's own deletion and no other.
    An administrator deleting an account its owner had deleted makes it theirs.
    The last active administrator is not deleted (`last_admin`), whoever asks.
    """
    with admins_kept():  # the admins' lock before the row lock
        return _soft_delete(user_id=user_id, actor_id=actor_id, by_owner=by_owner)


def _soft_delete(*, user_id: Id, actor_id: Id | None, by_owner: bool) -> User:
    user = _user(user_id, for_update=True)
    if user.deleted_at is None:
        user.deleted_at = timezone.now()
        user.is_active = False
        user.deleted_by_owner = by_owner
        user.save(update_fields=["deleted_at", "is_active", "deleted_by_owner", "updated_at"])
        sessions_revoke_all(user_id=user.id, reason="deleted", actor_id=actor_id)
        event_emit(name="user_deleted", payload={"user_id": str(user.id), "deleted_at": user.deleted_at})
        audit_record(AuditKind.DELETED, user_id=user.id, actor_id=actor_id, by_owner=by_owner)
        auth_cache.refresh_user(user.id)
    elif user.deleted_by_owner and not by_owner:
        user.deleted_by_owner = False
        user.save(update_fields=["deleted_by_owner", "updated_at"])
        audit_record(AuditKind.DELETED, user_id=user.id, actor_id=actor_id, by_owner=False)
    return user


@transaction.atomic
def user_hard_delete(*, user_id: Id, actor_id: Id | None = None) -> None:
    """Remove an account and everything that hangs on it, for good.

    Its sessions are revoked first so that the cache records them as revoked
    (a token in flight is refused at once, even before the cached user entry
    is dropped); then the row goes, `user_deleted` (`hard: true`) is emitted and
    the cached user is removed after commit. The last active administrator is
    not removed (`last_admin`).
    """
    with admins_kept():  # the admins' lock before the row lock
        user = _user(user_id, for_update=True)
        sessions_revoke_all(user_id=user.id, reason="deleted", actor_id=actor_id)
        user.delete()
    event_emit(name="user_deleted", payload={"user_id": str(user_id), "hard": True})
    # The row is gone, so the audit entry names the id in its detail (as the purge does).
    audit_record(AuditKind.PURGED, actor_id=actor_id, detail_user_id=str(user_id), hard=True)
    auth_cache.refresh_user(user_id)


def user_delete_self(*, user_id: Id, password: str | None, session_id: Id | None = None) -> User:
    """`DELETE /users/me`: re-authentication (the password under the lockout, or for an account
    without one a recent session), then the owner's soft delete."""
    user = _user(user_id)
    if user.has_usable_password() and not password:
        raise ValidationError({"password": ["Your password is required to delete the account."]})
    reauth_confirm(user=user, session_id=session_id, password=password, field="password")
    return user_soft_delete(user_id=user.id, by_owner=True)


def user_restore_deadline() -> datetime:
    """Accounts deleted before this moment can no longer be restored."""
    return timezone.now() - timedelta(days=settings.ACCOUNT_RESTORE_DAYS)


@transaction.atomic
def user_restore(*, user_id: Id, actor_id: Id | None = None) -> User:
    """Undo a soft delete within the window (an administrator, or `user_restore_self`)."""
    user = _user(user_id, for_update=True)
    if user.deleted_at is None:
        raise ServiceError("The account is not deleted.", code="not_deleted")
    if user.deleted_at <= user_restore_deadline():
        raise ServiceError("The account was deleted too long ago to restore.", code="restore_expired")
    user.deleted_at = None
    user.deleted_by_owner = False
    user.is_active = True
    user.save(update_fields=["deleted_at", "deleted_by_owner", "is_active", "updated_at"])
    event_emit(name="user_restored", payload={"user_id": str(user.id)})
    audit_record(AuditKind.RESTORED, user_id=user.id, actor_id=actor_id)
    auth_cache.refresh_user(user.id)
    return user


def user_restore_self(*, identifier: str, password: str) -> User:
    """`/auth/restore`: the owner, with the password, within the window, of their own deletion.

    An account an administrator deleted or deactivated stays so. Every
    refusal is the login's 401, so it tells nothing about the account; wrong
    passwords count toward the same lockout as login, so restore is no side
    door for guessing.
    """
    user = User.objects.by_login(identifier).first()
    key = lockout_key(user=user, identifier=identifier)
    lockout_check(key=key)
    if not password_verify(user, password):
        lockout_record_failure(key=key, user=user)
        raise AuthenticationFailed(LOGIN_FAILED, code="invalid_credentials")
    assert user is not None
    if user.deleted_at is None or not user.deleted_by_owner or user.deleted_at <= user_restore_deadline():
        raise AuthenticationFailed(LOGIN_FAILED, code="invalid_credentials")
    if not user.mfa_enabled:  # with MFA on, the login is complete (and the count reset) at the code
        lockout_reset(key=key)
    email_verification_check(user)
    mfa_challenge_demand(user=user, amr=(AMR_PASSWORD,), purpose=PURPOSE_RESTORE)  # 403 mfa_required
    return user_restore(user_id=user.id)


def users_purge_deleted() -> int:
    """Remove for good the accounts deleted longer than `ACCOUNT_RESTORE_DAYS` ago."""
    purged = 0
    for user_id in (
        User.objects.filter(deleted_at__lte=user_restore_deadline()).values_list("id", flat=True).iterator()
    ):
        with transaction.atomic():
            deleted, _ = User.objects.filter(id=user_id, deleted_at__lte=user_restore_deadline()).delete()
            if deleted:
                audit_record(AuditKind.PURGED, detail_user_id=str(user_id))
                purged += 1
        auth_cache.refresh_user(user_id)
    return purged


def admin_ensure(*, stream: Any = None) -> User | None:
    """Create the first administrator when there is no superuser yet.

    Uses `ADMIN_USERNAME` / `ADMIN_EMAIL` / `ADMIN_PASSWORD`; without a
    password one is generated and printed once, to the console only (never
    to the log files). Safe when several processes start at once.
    """
    if User.objects.filter(is_superuser=True).exists():
        return None
    password = settings.ADMIN_PASSWORD
    generated = not password
    if generated:
        password = secrets.token_urlsafe(16)
    try:
        user = user_create(
            username=settings.ADMIN_USERNAME,
            email=settings.ADMIN_EMAIL,
            password=password,
            roles=[ROLE_USER, ROLE_ADMIN],
            is_superuser=True,
            validate_password=not generated,
        )
    except (IntegrityError, ValidationError) as exc:
        if User.objects.filter(is_superuser=True).exists():
            return None  # another process got there first
        raise ServiceError(f"Cannot create the admin account: {exc}", code="admin_not_created") from exc
    out = stream or sys.stderr
    out.write(f"Created admin account {user.username!r}")
    out.write(f" with the generated password: {password}\n" if generated else ".\n")
    out.flush()
    return user
