"""Login, sessions and tokens: open, refresh (single use, theft detection), revoke, verify."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError

from core import metrics
from core.errors import AuthenticationFailed, NotFound
from core.ids import Id
from notifications.models import Kind as NotificationKind
from notifications.services import notification_send

from .. import cache as auth_cache
from ..models import AuthSession, User
from ..tokens import AMR_PASSWORD, SessionRefreshToken, access_claims, hash_token, make_token_pair
from .audit import AuditKind, audit_record
from .credentials import credentials_check
from .mfa_challenges import PURPOSE_LOGIN, mfa_challenge_demand

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenPair:
    """What login and refresh hand out (rendered by `TokenPairSerializer` / `RefreshedPairSerializer`)."""

    access: str
    refresh: str
    expires_in: int
    session_id: str
    token_type: str = "Bearer"  # noqa: S105 (the OAuth2 token type, not a secret)


def session_login(*, identifier: str, password: str, ip: str | None, user_agent: str) -> TokenPair:
    """Password login: the lockout-guarded check every door shares, then a new session (or, for an
    account with MFA on, 403 `mfa_required` and a token for `/auth/mfa/verify`)."""
    user = credentials_check(identifier=identifier, password=password)
    mfa_challenge_demand(user=user, amr=(AMR_PASSWORD,), purpose=PURPOSE_LOGIN, ip=ip, user_agent=user_agent)
    pair = session_open(user=user, ip=ip, user_agent=user_agent, amr=(AMR_PASSWORD,))
    metrics.LOGINS.labels(result="succeeded").inc()
    audit_record(AuditKind.LOGIN, user_id=user.id, session_id=pair.session_id)
    return pair


@transaction.atomic
def session_open(
    *, user: User, ip: str | None, user_agent: str, amr: Sequence[str] = (AMR_PASSWORD,)
) -> TokenPair:
    """Open a session and its first token pair; evict the least recently used beyond the limit.

    `amr` (RFC 8176): every way the user proved who they are for this session, as its tokens
    will say: `pwd` (the default: a password), a social provider's name, and what MFA adds.
    """
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
    access, refresh, expires_in = make_token_pair(
        user_id=str(user.id),
        session_id=str(session.id),
        roles=user.roles,
        session_expires_at=session.expires_at,
        auth_time=session.created_at,
        amr=amr,
    )
    session.refresh_token_hash = hash_token(refresh)
    known_device = AuthSession.objects.filter(user=user, user_agent=user_agent).exists()
    first_session = known_device or not AuthSession.objects.filter(user=user).exists()
    session.save(force_insert=True)
    User.objects.filter(id=user.id).update(last_login=now)
    if not first_session:
        notification_send(
            user_id=user.id,
            kind=NotificationKind.SECURITY,
            title="New sign-in from a new device",
            body=f"Your account was signed in to from {user_agent or 'an unknown client'}"
            f" ({ip or 'unknown address'}). If it was not you, end that session and change your password.",
            data={"event": "new_device", "session_id": str(session.id), "ip": ip},
        )

    overflow = list(
        AuthSession.objects.active()
        .filter(user=user)
        .order_by("-last_used_at", "-created_at")
        .values_list("id", flat=True)[settings.MAX_ACTIVE_SESSIONS :]
    )
    if overflow:
        _revoke(AuthSession.objects.filter(id__in=overflow), reason="session_limit")

    auth_cache.store_session(session)
    auth_cache.warm_user(user.id)  # nothing cached changed: `last_login` is not part of it
    transaction.on_commit(lambda: auth_cache.mark_touched(session.id))
    return TokenPair(access, refresh, expires_in, str(session.id))


def _revoke(sessions: QuerySet[AuthSession], *, reason: str) -> int:
    """Revoke the still-active sessions of a queryset; returns how many."""
    now = timezone.now()
    rows = list(sessions.filter(revoked_at__isnull=True).values_list("id", "user_id", "expires_at"))
    if not rows:
        return 0
    count = AuthSession.objects.filter(id__in=[r[0] for r in rows], revoked_at__isnull=True).update(
        revoked_at=now, revoke_reason=reason
    )
    auth_cache.store_revoked_sessions([(str(sid), str(uid), exp) for sid, uid, exp in rows])
    metrics.SESSIONS_REVOKED.labels(reason=reason).inc(count)
    return count


@transaction.atomic
def session_revoke(
    *, session_id: Id, user_id: Id, reason: str = "revoked", actor_id: Id | None = None
) -> None:
    """Revoke one of the user's sessions; 404 if it is not theirs."""
    sessions = AuthSession.objects.filter(id=session_id, user_id=user_id)
    if not sessions.exists():
        raise NotFound("Session not found.")
    if _revoke(sessions, reason=reason):
        kind = AuditKind.LOGOUT if reason == "logout" else AuditKind.SESSION_REVOKED
        audit_record(kind, user_id=user_id, actor_id=actor_id, session_id=str(session_id), reason=reason)


@transaction.atomic
def sessions_revoke_all(
    *, user_id: Id, reason: str, except_session_id: Id | None = None, actor_id: Id | None = None
) -> int:
    sessions = AuthSession.objects.filter(user_id=user_id)
    if except_session_id is not None:
        sessions = sessions.exclude(id=except_session_id)
    count = _revoke(sessions, reason=reason)
    if count:
        audit_record(
            AuditKind.SESSION_REVOKED, user_id=user_id, actor_id=actor_id, count=count, reason=reason
        )
    return count


def _refresh_claims(raw: str) -> tuple[str, str, list[str] | None]:
    """(session id, user id, `amr`) of a valid refresh token; `amr` is None on one made before
    the claim existed (the session's new tokens then go without it: how it was opened is unknown)."""
    try:
        token = SessionRefreshToken(raw)  # type: ignore[arg-type]
        amr = token.get("amr")
        methods = [str(method) for method in amr] if isinstance(amr, list) else None
        return str(token["sid"]), str(token["sub"]), methods
    except (TokenError, KeyError):
        raise AuthenticationFailed("Token is invalid or expired.", code="token_not_valid") from None


def session_refresh(*, refresh: str) -> TokenPair:
    """Spend a refresh token for a new pair. A spent token again revokes the session."""
    session_id, user_id, amr = _refresh_claims(refresh)
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
        auth_time=session.created_at,
        amr=amr,
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
            audit_record(AuditKind.TOKEN_REUSE, user_id=user_id, session_id=session_id)
            notification_send(
                user_id=user_id,
                kind=NotificationKind.SECURITY,
                title="A session was ended: its refresh token was used twice",
                body="A refresh token of one of your sessions was presented after it had been used, "
                "which means someone else may have a copy. That session is ended; log in again. "
                "If this keeps happening, change your password.",
                data={"event": "token_reuse", "session_id": session_id},
            )
    if revoked:
        logger.warning("Refresh token reuse: session %s of user %s revoked", session_id, user_id)
    metrics.REFRESH_TOKEN_REUSE.inc()
    raise AuthenticationFailed(
        "The refresh token was already used; the session is revoked.", code="token_reused"
    )


def session_is_live(state: auth_cache.AuthState, user_id: str) -> bool:
    """Does this cached state let the token's bearer in: its session live and theirs, its user active?"""
    return (
        state.session is not None
        and state.session.is_live
        and state.session.user_id == user_id
        and state.principal is not None
        and state.principal.can_authenticate
    )


def access_token_verify(*, token: str) -> dict[str, Any]:
    """Claims of a live access token (its session live, its user active), else 401."""
    try:
        claims = access_claims(token)
    except TokenError:
        raise AuthenticationFailed("Token is invalid or expired.", code="token_not_valid") from None
    state = auth_cache.load_auth_state(session_id=claims.session_id, user_id=claims.user_id)
    if not session_is_live(state, claims.user_id):
        raise AuthenticationFailed("The session has ended.", code="session_revoked")
    return {"valid": True, "user_id": claims.user_id, "session_id": claims.session_id, "exp": claims.exp}


def session_touch(*, session_id: str) -> None:
    """Record use of a session (at most every `SESSION_TOUCH_SECONDS`)."""
    AuthSession.objects.filter(id=session_id, revoked_at__isnull=True).update(last_used_at=timezone.now())
    auth_cache.mark_touched(session_id)
