"""Business rules for accounts, sessions and tokens.

Views, admin actions, management commands and tasks all call these
functions, so every path has the same effects (cache, sessions, roles).
Field problems are raised as Django `ValidationError`s with a message dict;
everything else as `config.exceptions.ServiceError`.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError

from config.errors import AuthenticationFailed, NotFound, ServiceError

from . import cache as auth_cache
from .models import ROLE_ADMIN, ROLE_USER, AuthSession, User, normalize_email
from .tokens import SessionAccessToken, SessionRefreshToken, hash_token, make_token_pair

logger = logging.getLogger(__name__)

LOGIN_FAILED = "Invalid username or password."


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int
    session_id: str


# --- users ----------------------------------------------------------------------


def _check_unique(*, username: str | None, email: str | None, exclude_id: Any = None) -> None:
    errors: dict[str, list[str]] = {}
    others = User.objects.exclude(id=exclude_id) if exclude_id else User.objects.all()
    if username is not None and others.alias(u=Lower("username")).filter(u=username.lower()).exists():
        errors["username"] = ["A user with that username already exists."]
    if email is not None and others.filter(email=email).exists():
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


def validate_password_for(password: str, *, username: str, email: str, full_name: str = "") -> None:
    probe = User(username=username, email=email, full_name=full_name)
    try:
        password_validation.validate_password(password, probe)
    except ValidationError as exc:
        raise ValidationError({"password": list(exc.messages)}) from None


@transaction.atomic
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
) -> User:
    """Create an account with its roles (`user` when none are given)."""
    email = normalize_email(email)
    _check_unique(username=username, email=email)
    if password is not None and validate_password:
        validate_password_for(password, username=username, email=email, full_name=full_name)
    groups = _resolve_groups(roles or [ROLE_USER])
    user = User(
        username=username, email=email, full_name=full_name, is_active=is_active, is_superuser=is_superuser
    )
    user.password = make_password(password)  # None gives an unusable password
    user.is_staff = is_superuser or any(g.name == ROLE_ADMIN for g in groups)
    _save_unique(user, force_insert=True)
    user.groups.set(groups)
    return user


def user_get(*, user_id: Any) -> User:
    try:
        return User.objects.get(id=user_id)
    except (User.DoesNotExist, ValidationError, ValueError):
        raise NotFound("User not found.") from None


@transaction.atomic
def user_update(
    *, user_id: Any, username: str | None = None, email: str | None = None, full_name: str | None = None
) -> User:
    """The profile fields a user may change about themselves."""
    user = User.objects.select_for_update().get(id=user_id)
    if email is not None:
        email = normalize_email(email)
    _check_unique(
        username=username if username is not None and username.lower() != user.username.lower() else None,
        email=email if email is not None and email != user.email else None,
        exclude_id=user.id,
    )
    changed = []
    for field, value in (("username", username), ("email", email), ("full_name", full_name)):
        if value is not None and getattr(user, field) != value:
            setattr(user, field, value)
            changed.append(field)
    if changed:
        _save_unique(user, update_fields=[*changed, "updated_at"])
        auth_cache.refresh_user(user.id)
    return user


@transaction.atomic
def user_admin_update(
    *, user_id: Any, is_active: bool | None = None, roles: Iterable[str] | None = None, **profile: Any
) -> User:
    """An administrator's edit: the profile fields, activity and roles."""
    user = user_update(user_id=user_id, **profile)
    if roles is not None:
        user_set_roles(user=user, roles=roles)
    if is_active is not None and is_active != user.is_active:
        user_set_active(user=user, is_active=is_active)
    return user


@transaction.atomic
def user_set_roles(*, user: User, roles: Iterable[str]) -> User:
    groups = _resolve_groups(roles)
    user.groups.set(groups)
    if not user.is_superuser:
        is_staff = any(g.name == ROLE_ADMIN for g in groups)
        if is_staff != user.is_staff:
            user.is_staff = is_staff
            user.save(update_fields=["is_staff", "updated_at"])
    auth_cache.refresh_user(user.id)
    return user


@transaction.atomic
def user_set_active(*, user: User, is_active: bool) -> User:
    """Deactivation ends every session at once; reactivation opens none."""
    user.is_active = is_active
    user.save(update_fields=["is_active", "updated_at"])
    if not is_active:
        sessions_revoke_all(user_id=user.id, reason="deactivated")
    auth_cache.refresh_user(user.id)
    return user


@transaction.atomic
def user_soft_delete(*, user_id: Any, reason: str = "deleted") -> User:
    """Mark deleted and inactive, end every session; restorable for a while."""
    user = User.objects.select_for_update().get(id=user_id)
    if user.deleted_at is None:
        user.deleted_at = timezone.now()
        user.is_active = False
        user.save(update_fields=["deleted_at", "is_active", "updated_at"])
        sessions_revoke_all(user_id=user.id, reason=reason)
        auth_cache.refresh_user(user.id)
    return user


@transaction.atomic
def user_delete_self(*, user_id: Any, password: str) -> User:
    user = User.objects.get(id=user_id)
    if not user.check_password(password):
        raise ValidationError({"password": ["The password is not correct."]})
    return user_soft_delete(user_id=user_id, reason="account_deleted")


def ensure_admin(*, stream: Any = None) -> User | None:
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


# --- login and sessions -------------------------------------------------------


def check_credentials(*, identifier: str, password: str) -> User | None:
    """The user these credentials belong to, or None, taking about the same time either way."""
    user = User.objects.by_login(identifier).first()
    if user is None:
        # Hash anyway, so an unknown name is not told apart by timing.
        make_password(password)
        return None
    if not user.check_password(password):
        return None
    if not user.is_active or user.deleted_at is not None:
        return None
    return user


def login(*, identifier: str, password: str, ip: str | None, user_agent: str) -> TokenPair:
    user = check_credentials(identifier=identifier, password=password)
    if user is None:
        raise AuthenticationFailed(LOGIN_FAILED, code="invalid_credentials")
    return session_open(user=user, ip=ip, user_agent=user_agent)


@transaction.atomic
def session_open(*, user: User, ip: str | None, user_agent: str) -> TokenPair:
    """Open a session and its first token pair; evict the least recently used beyond the limit."""
    # One login at a time per user, so two at once cannot both stay under the limit.
    User.objects.select_for_update().filter(id=user.id).values_list("id", flat=True).first()
    now = timezone.now()
    session = AuthSession(
        user=user,
        created_at=now,
        last_used_at=now,
        ip=ip,
        user_agent=user_agent,
        expires_at=now + timedelta(days=settings.SESSION_MAX_AGE_DAYS),
    )
    roles = user.roles
    access, refresh, expires_in = make_token_pair(
        user_id=str(user.id), session_id=str(session.id), roles=roles, session_expires_at=session.expires_at
    )
    session.refresh_token_hash = hash_token(refresh)
    session.save(force_insert=True)

    overflow = list(
        AuthSession.objects.active()
        .filter(user=user)
        .order_by("-last_used_at", "-created_at")
        .values_list("id", flat=True)[settings.MAX_ACTIVE_SESSIONS :]
    )
    if overflow:
        _revoke(AuthSession.objects.filter(id__in=overflow), reason="session_limit")

    auth_cache.store_session(session)
    auth_cache.refresh_user(user.id)
    transaction.on_commit(lambda: auth_cache.mark_touched(session.id))
    return TokenPair(access, refresh, expires_in, str(session.id))


def _revoke(sessions: Any, *, reason: str) -> int:
    """Revoke the still-active sessions of a queryset; returns how many."""
    now = timezone.now()
    rows = list(sessions.filter(revoked_at__isnull=True).values_list("id", "user_id", "expires_at"))
    if not rows:
        return 0
    count = AuthSession.objects.filter(id__in=[r[0] for r in rows], revoked_at__isnull=True).update(
        revoked_at=now, revoke_reason=reason
    )
    auth_cache.store_revoked_sessions([(str(sid), str(uid), exp) for sid, uid, exp in rows])
    return count


@transaction.atomic
def session_revoke(*, session_id: Any, user_id: Any, reason: str = "revoked") -> None:
    """Revoke one of the user's sessions; 404 if it is not theirs."""
    sessions = AuthSession.objects.filter(id=session_id, user_id=user_id)
    if not sessions.exists():
        raise NotFound("Session not found.")
    _revoke(sessions, reason=reason)


@transaction.atomic
def sessions_revoke_all(*, user_id: Any, reason: str, except_session_id: Any = None) -> int:
    sessions = AuthSession.objects.filter(user_id=user_id)
    if except_session_id is not None:
        sessions = sessions.exclude(id=except_session_id)
    return _revoke(sessions, reason=reason)


def _refresh_claims(raw: str) -> tuple[str, str]:
    try:
        token = SessionRefreshToken(raw)  # type: ignore[arg-type]
        return str(token["sid"]), str(token["sub"])
    except (TokenError, KeyError):
        raise AuthenticationFailed("Token is invalid or expired.", code="token_not_valid") from None


def session_refresh(*, refresh: str) -> TokenPair:
    """Spend a refresh token for a new pair. A spent token again revokes the session."""
    session_id, user_id = _refresh_claims(refresh)
    user = User.objects.filter(id=user_id).prefetch_related("groups").first()
    session = AuthSession.objects.filter(id=session_id, user_id=user_id).first()
    if user is None or session is None:
        raise AuthenticationFailed("Token is invalid or expired.", code="token_not_valid")
    if not session.is_active or not user.is_active or user.deleted_at is not None:
        raise AuthenticationFailed("The session has ended.", code="session_revoked")

    access, new_refresh, expires_in = make_token_pair(
        user_id=user_id,
        session_id=session_id,
        roles=sorted(g.name for g in user.groups.all()),
        session_expires_at=session.expires_at,
    )
    now = timezone.now()
    with transaction.atomic():
        # The conditional update is the lock: of two refreshes with one token,
        # exactly one matches the stored hash.
        won = AuthSession.objects.filter(
            id=session_id,
            refresh_token_hash=hash_token(refresh),
            revoked_at__isnull=True,
            expires_at__gt=now,
        ).update(refresh_token_hash=hash_token(new_refresh), last_used_at=now)
    if won:
        auth_cache.mark_touched(session_id)
        return TokenPair(access, new_refresh, expires_in, session_id)

    with transaction.atomic():
        revoked = _revoke(AuthSession.objects.filter(id=session_id), reason="refresh_reuse")
    if revoked:
        logger.warning("Refresh token reuse: session %s of user %s revoked", session_id, user_id)
    raise AuthenticationFailed(
        "The refresh token was already used; the session is revoked.", code="token_reused"
    )


def access_token_verify(*, token: str) -> dict[str, Any]:
    """Claims of a live access token (its session live, its user active), else 401."""
    try:
        access = SessionAccessToken(token)  # type: ignore[arg-type]
        session_id, user_id = str(access["sid"]), str(access["sub"])
    except (TokenError, KeyError):
        raise AuthenticationFailed("Token is invalid or expired.", code="token_not_valid") from None
    state = auth_cache.load_auth_state(session_id=session_id, user_id=user_id)
    if not live(state, user_id):
        raise AuthenticationFailed("The session has ended.", code="session_revoked")
    return {"valid": True, "user_id": user_id, "session_id": session_id, "exp": access["exp"]}


def live(state: auth_cache.AuthState, user_id: str) -> bool:
    return (
        state.session is not None
        and state.session.is_live
        and state.session.user_id == user_id
        and state.principal is not None
        and state.principal.can_authenticate
    )


def session_touch(*, session_id: str) -> None:
    """Record use of a session (at most every `SESSION_TOUCH_SECONDS`)."""
    AuthSession.objects.filter(id=session_id, revoked_at__isnull=True).update(last_used_at=timezone.now())
    auth_cache.mark_touched(session_id)
