"""Read-through cache of what every authenticated request needs: the user and its session.

Three keys per request, read in one round trip (one `MGET`, see `read_keys`):

- `auth:u:{user_id}`  the user, as the API shows it (never the password hash);
- `auth:s:{session_id}` the session state: owner, absolute expiry, revoked;
- `auth:t:{session_id}` present while `last_used_at` is fresh enough.

The database stays the source of truth. Fills after a miss use `add` (set only
if absent) and changes *write the new state* after commit, never just delete:
a fill that read the database before a change then cannot overwrite the state
the change wrote. A cache that errors is read as a miss (the database
answers), never as "session fine".

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

import logging
import os
import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache, caches
from django.db import transaction
from django.utils import timezone

from core.caching import FAILED, safe_call
from core.metrics import CACHE_SECONDS

from .models import AuthSession, User, user_is_admin
from .shapes import api_time, user_api_shape

if TYPE_CHECKING:
    from uuid import UUID

logger = logging.getLogger(__name__)
_GET_MANY_SECONDS = CACHE_SECONDS.labels(operation="get_many")


@dataclass(frozen=True)
class Principal:
    """The authenticated user as requests see it: read-only, never saved.

    Built from the cache or the database; services that change a user load
    the row themselves.
    """

    id: str
    username: str
    email: str
    full_name: str
    roles: tuple[str, ...]
    is_active: bool
    is_staff: bool
    is_superuser: bool
    created_at: str
    updated_at: str
    deleted_at: str | None
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
            full_name=user.full_name,
            roles=tuple(roles if roles is not None else user.roles),
            is_active=user.is_active,
            is_staff=user.is_staff,
            is_superuser=user.is_superuser,
            created_at=api_time(user.created_at),
            updated_at=api_time(user.updated_at),
            deleted_at=api_time(user.deleted_at) if user.deleted_at else None,
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


def _user_key(user_id: str | UUID) -> str:
    return f"auth:u:{user_id}"


def _session_key(session_id: str | UUID) -> str:
    return f"auth:s:{session_id}"


def _touch_key(session_id: str | UUID) -> str:
    return f"auth:t:{session_id}"


def _ttl() -> int:
    return settings.CACHE_TTL


def _session_ttl(state: SessionState | dict[str, Any]) -> int:
    """A live state briefly (the bound on a lost revocation), a revoked one as long as any entry."""
    revoked = state.revoked if isinstance(state, SessionState) else state["revoked"]
    return settings.CACHE_TTL if revoked else min(settings.SESSION_STATE_TTL, settings.CACHE_TTL)


class _RawReader:
    """One `MGET` on a connection this thread keeps, for django-redis' default client.

    django-redis' `get_many` goes through redis-py's `Redis.execute_command`:
    a pool checkout, a retry wrapper and a connection check around the same
    `MGET`; the benchmark measured ~130 µs here against ~208 µs (issue 14).
    Same connection settings (the pool's), same key names (`make_key`), same
    decoding (`decode`). Any error is raised to the caller, which reads it as
    a miss, as with `get_many`; a connection that failed is dropped.
    """

    def __init__(self, backend: Any) -> None:
        client = backend.client
        pool = client.get_client(write=False).connection_pool
        self._connection_class = pool.connection_class
        self._connection_kwargs = dict(pool.connection_kwargs)
        self._make_key = backend.make_key
        self._decode = client.decode
        self._local = threading.local()

    def _connection(self) -> tuple[Any, bool]:
        """This thread's connection, and whether a command already succeeded on it."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # new thread, or a fork: never share a socket
            local.connection, local.pid, local.used = (
                self._connection_class(**self._connection_kwargs),
                os.getpid(),
                False,
            )
        return local.connection, local.used

    def _send(self, connection: Any, keys: list[str]) -> list[Any]:
        connection.send_command("MGET", *[self._make_key(key) for key in keys])
        return list(connection.read_response())

    def mget(self, keys: list[str]) -> dict[str, Any]:
        from redis.exceptions import ConnectionError as RedisConnectionError

        connection, used = self._connection()
        try:
            try:
                values = self._send(connection, keys)
            except RedisConnectionError:
                # A kept connection the server closed meanwhile (a Redis restart): one new try.
                if not used:
                    raise
                connection.disconnect()
                values = self._send(connection, keys)
        except BaseException:
            connection.disconnect()
            self._local.used = False
            raise
        self._local.used = True
        return {
            key: self._decode(value) for key, value in zip(keys, values, strict=True) if value is not None
        }


_reader_for: list[Any] = [None, None]  # [the CACHES setting it was made for, the raw reader or None]


def _reader() -> _RawReader | None:
    """The raw reader for the default cache; None for a backend other than django-redis' default client.

    Keyed on the CACHES setting, not the backend object: Django gives each
    thread a backend object of its own, and the reader keeps a connection per thread.
    """
    config = settings.CACHES
    if _reader_for[0] is not config:  # first use, or the settings changed (tests)
        from django_redis.cache import RedisCache
        from django_redis.client import DefaultClient

        backend = caches["default"]
        usable = isinstance(backend, RedisCache) and type(backend.client) is DefaultClient
        _reader_for[:] = [config, _RawReader(backend) if usable else None]
    return _reader_for[1]  # type: ignore[no-any-return]


def read_keys(keys: list[str]) -> Any:
    """The keys' values (absent keys left out), or `FAILED` if the cache raised."""
    reader = _reader()
    if reader is None:
        return safe_call("get_many", cache.get_many, keys)
    try:
        with _GET_MANY_SECONDS.time():  # the cache's own get_many timing (core/metrics_cache.py)
            return reader.mget(keys)
    except Exception:
        logger.warning("cache mget failed", exc_info=True)
        return FAILED


@dataclass(frozen=True)
class AuthState:
    session: SessionState | None
    principal: Principal | None
    needs_touch: bool


# Changes whose cache write failed (cache down): written again from the database
# by this process once the cache answers, so a revocation is not lost to an outage.
_pending_users: set[str] = set()
_pending_sessions: set[str] = set()


def _write_session(session_id: str) -> None:
    session = AuthSession.objects.filter(id=session_id).only("user_id", "expires_at", "revoked_at").first()
    if session is None:
        ok = safe_call("delete", cache.delete, _session_key(session_id)) is not FAILED
    else:
        state = asdict(SessionState.from_session(session))
        ok = safe_call("set", cache.set, _session_key(session_id), state, _session_ttl(state)) is not FAILED
    (_pending_sessions.discard if ok else _pending_sessions.add)(session_id)


def _retry_pending() -> None:
    for user_id in list(_pending_users):
        _write_user(user_id)
    for session_id in list(_pending_sessions):
        _write_session(session_id)


def pending_writes() -> int:
    return len(_pending_users) + len(_pending_sessions)


def load_auth_state(*, session_id: str, user_id: str) -> AuthState:
    """User and session for a request: one cache round trip when warm."""
    keys = [_user_key(user_id), _session_key(session_id), _touch_key(session_id)]
    cached = read_keys(keys)
    cache_up = cached is not FAILED
    if not cache_up:
        cached = {}
    elif _pending_users or _pending_sessions:
        _retry_pending()  # then read again: what was just fetched may be what the retry replaced
        cached = read_keys(keys)
        cached = {} if cached is FAILED else cached
    user_data = cached.get(keys[0])
    session_data = cached.get(keys[1])

    session_state = SessionState(**session_data) if session_data else None
    principal = Principal.from_cache(user_data, session_id) if user_data else None
    if session_state is None or principal is None:
        session_state, principal = _fill(session_id, user_id, session_state, principal, cache_up)
    # Without a working cache nothing remembers the last touch: skip it rather
    # than write on every request.
    needs_touch = cache_up and keys[2] not in cached
    return AuthState(session_state, principal, needs_touch)


def _fill(
    session_id: str,
    user_id: str,
    session_state: SessionState | None,
    principal: Principal | None,
    cache_up: bool,
) -> tuple[SessionState | None, Principal | None]:
    to_add: dict[str, Any] = {}
    if session_state is None:
        session = (
            AuthSession.objects.filter(id=session_id).only("user_id", "expires_at", "revoked_at").first()
        )
        if session is None:
            return None, principal
        session_state = SessionState.from_session(session)
        to_add[_session_key(session_id)] = asdict(session_state)
    if principal is None:
        user = User.objects.filter(id=user_id).prefetch_related("groups").first()
        if user is None:
            return session_state, None
        principal = Principal.from_user(user, sorted(g.name for g in user.groups.all()))
        to_add[_user_key(user_id)] = principal.to_cache()
        principal = Principal.from_cache(principal.to_cache(), session_id)
    if cache_up:
        for key, value in to_add.items():
            ttl = _session_ttl(value) if key.startswith("auth:s:") else _ttl()
            safe_call("add", cache.add, key, value, ttl)
    return session_state, principal


def _write_user(user_id: str) -> None:
    user = User.objects.filter(id=user_id).prefetch_related("groups").first()
    if user is None:
        ok = safe_call("delete", cache.delete, _user_key(user_id)) is not FAILED
    else:
        principal = Principal.from_user(user, sorted(g.name for g in user.groups.all()))
        ok = safe_call("set", cache.set, _user_key(user_id), principal.to_cache(), _ttl()) is not FAILED
    (_pending_users.discard if ok else _pending_users.add)(user_id)


def refresh_user(user_id: str | UUID) -> None:
    """After the current transaction commits, write the user's new state to the cache."""
    transaction.on_commit(lambda: _write_user(str(user_id)))


def _set_sessions(values: dict[str, SessionState]) -> None:
    failed: set[str] = set()
    for revoked in (False, True):  # one round trip per lifetime
        group = {sid: state for sid, state in values.items() if state.revoked is revoked}
        if group:
            data = {_session_key(sid): asdict(state) for sid, state in group.items()}
            ttl = _session_ttl(next(iter(group.values())))
            if safe_call("set_many", cache.set_many, data, ttl) is FAILED:
                failed.update(group)
    _pending_sessions.update(failed)
    _pending_sessions.difference_update(set(values) - failed)


def store_session(session: AuthSession) -> None:
    """After commit, write a session's state (live, or revoked) to the cache."""
    values = {str(session.id): SessionState.from_session(session)}
    transaction.on_commit(lambda: _set_sessions(values))


def store_revoked_sessions(sessions: list[tuple[str, str, datetime]]) -> None:
    """After commit, mark sessions (id, user id, expiry) revoked in the cache."""
    values = {sid: SessionState(uid, expires_at.timestamp(), True) for sid, uid, expires_at in sessions}
    if values:
        transaction.on_commit(lambda: _set_sessions(values))


def mark_touched(session_id: str | UUID) -> None:
    safe_call("set", cache.set, _touch_key(session_id), 1, settings.SESSION_TOUCH_SECONDS)
