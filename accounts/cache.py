"""Read-through cache of what every authenticated request needs: the user and its session.

Three keys per request, read in one round trip (`core.read_through.read_many`, one `MGET`):

- `auth:u:{user_id}`  the user, as the API shows it (never the password hash);
- `auth:s:{session_id}` the session state: owner, absolute expiry, revoked;
- `auth:t:{session_id}` present while `last_used_at` is fresh enough.

The first two are `ReadThrough` families (`core.read_through`, whose rules
they follow: fills add, changes write the new state after commit, an error is
a miss, never "session fine"); the third is a plain marker.

A change whose cache write fails (a hiccup: the write failed, the next reads
succeed) would leave the old state for other processes to read. The bound on
that: a *live* session state is kept at most `SESSION_STATE_TTL` seconds
(default 30), so a revocation reaches every worker of every host within that
time even if the process that lost the write dies; a revoked state, which
never turns live again, keeps `CACHE_TTL`. The process that lost the write
also retries it as soon as its cache answers again. Cost: one indexed
session read per live session and `SESSION_STATE_TTL` (benchmarks/README.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from core.caching import FAILED, safe_call
from core.read_through import ReadThrough, cache_ttl, read_many, retry_pending, short_ttl

from .api_shapes import api_time, user_api_shape
from .models import AuthSession, User, user_is_admin

if TYPE_CHECKING:
    from uuid import UUID


@dataclass(frozen=True)
class Principal:
    """The authenticated user as requests see it: read-only, never saved.

    Built from the cache or the database; services that change a user load
    the row themselves.
    """

    id: str
    username: str
    email: str
    email_verified: bool
    email_pending: str
    full_name: str
    roles: tuple[str, ...]
    is_active: bool
    is_staff: bool
    is_superuser: bool
    created_at: str
    updated_at: str
    deleted_at: str | None
    mfa_enabled: bool
    session_id: str | None = None

    is_authenticated = True
    is_anonymous = False

    @property
    def pk(self) -> str:
        return self.id

    @property
    def is_admin(self) -> bool:
        return user_is_admin(is_superuser=self.is_superuser, roles=self.roles)

    @classmethod
    def from_user(cls, user: User, roles: list[str] | None = None) -> Principal:
        return cls(
            id=str(user.id),
            username=user.username,
            email=user.email,
            email_verified=user.email_verified,
            email_pending=user.email_pending,
            full_name=user.full_name,
            roles=tuple(roles if roles is not None else user.roles),
            is_active=user.is_active,
            is_staff=user.is_staff,
            is_superuser=user.is_superuser,
            created_at=api_time(user.created_at),
            updated_at=api_time(user.updated_at),
            deleted_at=api_time(user.deleted_at) if user.deleted_at else None,
            mfa_enabled=user.mfa_enabled,
        )

    def to_cache(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("session_id")
        data["roles"] = list(self.roles)
        return data

    @classmethod
    def from_cache(cls, data: dict[str, Any], session_id: str | None) -> Principal:
        return cls(**{**data, "roles": tuple(data["roles"]), "session_id": session_id})

    def as_api_user(self) -> dict[str, Any]:
        """The `/users/me` body, built directly (no serializer on the hot path)."""
        return user_api_shape(self)

    @property
    def can_authenticate(self) -> bool:
        return self.is_active and self.deleted_at is None


@dataclass(frozen=True)
class SessionState:
    user_id: str
    expires_at: float  # epoch seconds
    revoked: bool

    @classmethod
    def from_session(cls, session: AuthSession) -> SessionState:
        return cls(str(session.user_id), session.expires_at.timestamp(), session.revoked_at is not None)

    @property
    def is_live(self) -> bool:
        return not self.revoked and self.expires_at > timezone.now().timestamp()


def _user_load(user_id: str) -> dict[str, Any] | None:
    user = User.objects.filter(id=user_id).select_related("totp_device").prefetch_related("groups").first()
    if user is None:
        return None
    return Principal.from_user(user, sorted(g.name for g in user.groups.all())).to_cache()


def _session_load(session_id: str) -> dict[str, Any] | None:
    session = AuthSession.objects.filter(id=session_id).only("user_id", "expires_at", "revoked_at").first()
    return None if session is None else asdict(SessionState.from_session(session))


def _session_ttl(state: dict[str, Any]) -> int:
    """A live state briefly (the bound on a lost revocation), a revoked one as long as any entry."""
    return cache_ttl() if state["revoked"] else short_ttl()


_CACHED_USER_FIELDS = frozenset(field.name for field in fields(Principal)) - {"session_id"}
_CACHED_SESSION_FIELDS = frozenset(field.name for field in fields(SessionState))

#: `auth:u:{user_id}`: the user as the API shows it (`Principal.to_cache`). An entry with other
#: fields (written by an older release) is reloaded, never read as a user.
USERS: ReadThrough[dict[str, Any]] = ReadThrough(
    "auth:u",
    load=_user_load,
    valid=lambda cached: isinstance(cached, dict) and cached.keys() == _CACHED_USER_FIELDS,
)
#: `auth:s:{session_id}`: the session state (`SessionState`, as a dict).
SESSIONS: ReadThrough[dict[str, Any]] = ReadThrough(
    "auth:s",
    load=_session_load,
    ttl=_session_ttl,
    valid=lambda cached: isinstance(cached, dict) and cached.keys() == _CACHED_SESSION_FIELDS,
)


def _touch_key(session_id: str | UUID) -> str:
    return f"auth:t:{session_id}"


@dataclass(frozen=True)
class AuthState:
    session: SessionState | None
    principal: Principal | None
    needs_touch: bool


def load_auth_state(*, session_id: str, user_id: str) -> AuthState:
    """User and session for a request: one cache round trip (`read_many`) when warm, none when the
    process's near cache holds them."""
    keys = [USERS.key(user_id), SESSIONS.key(session_id), _touch_key(session_id)]
    # A write this process could not make (Redis was down) may be a revocation the cache still
    # lacks: then never the near cache (core.near_cache), only Redis after the retry below.
    pending = bool(USERS.pending or SESSIONS.pending)
    cached = read_many(keys, near=not pending)
    cache_up = cached is not FAILED
    if not cache_up:
        cached = {}
    elif pending and retry_pending((USERS, SESSIONS)):
        cached = read_many(keys, near=False)  # what was just fetched may be what the retry replaced
        cached = {} if cached is FAILED else cached
    session_data = SESSIONS.value_of(cached.get(keys[1])) or SESSIONS.fetch(session_id, cache_up=cache_up)
    if session_data is None:
        return AuthState(None, None, False)
    user_data = USERS.value_of(cached.get(keys[0])) or USERS.fetch(user_id, cache_up=cache_up)
    principal = Principal.from_cache(user_data, session_id) if user_data else None
    # Without a working cache nothing remembers the last touch: skip it rather
    # than write on every request.
    needs_touch = cache_up and keys[2] not in cached
    return AuthState(SessionState(**session_data), principal, needs_touch)


def refresh_user(user_id: str | UUID) -> None:
    """After the current transaction commits, write the user's new state to the cache."""
    USERS.write_after_commit(user_id)


def warm_user(user_id: str | UUID) -> None:
    """After commit, have the user in the cache for the requests to come: read through it (a hit is
    one `GET`; a miss loads and adds). For a change that leaves every cached field as it was, as a
    login does (`last_login` is not cached), where `refresh_user` would load the user again anyway."""
    transaction.on_commit(lambda: USERS.get(user_id))


def store_session(session: AuthSession) -> None:
    """After commit, write a session's state (live, or revoked) to the cache."""
    SESSIONS.put_after_commit({session.id: asdict(SessionState.from_session(session))})


def store_revoked_sessions(sessions: list[tuple[str, str, datetime]]) -> None:
    """After commit, mark sessions (id, user id, expiry) revoked in the cache."""
    SESSIONS.put_after_commit(
        {sid: asdict(SessionState(uid, expires_at.timestamp(), True)) for sid, uid, expires_at in sessions}
    )


def mark_touched(session_id: str | UUID) -> None:
    safe_call("set", cache.set, _touch_key(session_id), 1, settings.SESSION_TOUCH_SECONDS)
