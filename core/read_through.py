"""The read-through cache in front of the database: every cached read of the service is a `ReadThrough`.

One family of entries (users, sessions, LLM settings, documents, unread counts, the role list)
is one `ReadThrough(prefix, load=..., ttl=...)`, keyed `{prefix}:{ident}`. The rules, the same for all:

- The database is the source of truth. A read that misses loads from it (`load`) and *adds* the
  value (set only if absent): a fill that read the database before a change can then never
  overwrite the state that the change wrote.
- A change writes the new state *after its transaction commits* (`write_after_commit`, which
  loads again, or `put_after_commit` with values the change already holds); never a bare delete,
  which would let a fill that read before the change put the old state back for a whole TTL.
- A cache that errors is a miss: the database answers, never "all clear".
- A write that failed (the cache was down) is remembered and written again from the database by
  this process as soon as the cache answers a read of the family (`pending`).
- `ttl(value)` bounds how long an entry lives, and so how long an entry can be wrong when a
  write is lost for good (the process holding it died) or lost in a race between two changes
  of one entry (the later-committed change's write landing first). Families whose staleness a
  user would notice choose a short bound: `SESSION_STATE_TTL` for live sessions and unread counts.
- Owner scope: `get(ident, owner=...)` answers None for an entry of someone else, so a warm read
  needs no query and still cannot show another user's data.

The fast path: `read_many(keys)` reads several families' keys in one `MGET` on a connection
each thread keeps (the authenticated request's user and session, `accounts.cache`). Same keys,
same values, same outage rule; see `_RawReader` for why it bypasses django-redis' `get_many`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from django.conf import settings
from django.core.cache import cache, caches
from django.db import transaction

from . import near_cache
from .caching import FAILED, safe_call
from .metrics import CACHE_SECONDS
from .near_cache import NearCache

logger = logging.getLogger(__name__)
_GET_MANY_SECONDS = CACHE_SECONDS.labels(operation="get_many")

V = TypeVar("V")


def cache_ttl(value: Any = None) -> int:
    """`CACHE_TTL`: the default bound of a family."""
    return int(settings.CACHE_TTL)


def short_ttl(value: Any = None) -> int:
    """`SESSION_STATE_TTL` (never above `CACHE_TTL`): for entries whose staleness a user would notice."""
    return int(min(settings.SESSION_STATE_TTL, settings.CACHE_TTL))


class ReadThrough(Generic[V]):
    """One family of cached entries; see the module's rules.

    - `load(ident)`: the value from the database, None if there is none (None is never cached);
    - `load_many(idents)`: optional, the values of several idents in one query (for writes of many);
    - `ttl(value)`: seconds the value may live;
    - `owner(value)`: the id of the user the value belongs to, for `get(..., owner=...)`;
    - `valid(cached)`: whether a cached value has the shape this code reads (an entry written by
      an older release is reloaded and overwritten).
    """

    families: ClassVar[list[ReadThrough[Any]]] = []

    def __init__(
        self,
        prefix: str,
        *,
        load: Callable[[str], V | None],
        ttl: Callable[[V], int] = cache_ttl,
        load_many: Callable[[list[str]], Mapping[str, V]] | None = None,
        owner: Callable[[V], str] | None = None,
        valid: Callable[[Any], bool] | None = None,
    ) -> None:
        self.prefix = prefix
        self._load = load
        self._load_many = load_many
        self.ttl = ttl
        self._owner = owner
        self._valid = valid or (lambda cached: True)
        self.pending: set[str] = set()
        ReadThrough.families.append(self)

    def key(self, ident: object) -> str:
        return f"{self.prefix}:{ident}"

    # --- reads ----------------------------------------------------------------------------

    def get(self, ident: object, *, owner: object | None = None) -> V | None:
        """The value (cache, else database), or None: none, or not `owner`'s."""
        key = self.key(ident)
        cached = safe_call("get", cache.get, key)
        if cached is not FAILED and self.pending:
            self.retry_pending()
            cached = safe_call("get", cache.get, key)  # the retry may have replaced what was read
        value = self.value_of(cached)
        if value is None:
            malformed = cached is not None and cached is not FAILED
            value = self.fetch(ident, cache_up=cached is not FAILED, overwrite=malformed)
        if value is None or owner is None or self._owner is None:
            return value
        return value if self._owner(value) == str(owner) else None

    def value_of(self, cached: Any) -> V | None:
        """A value read from the cache (by `get` or `read_many`), or None if it is absent or malformed."""
        if cached is None or cached is FAILED or not self._valid(cached):
            return None
        return cached  # type: ignore[no-any-return]

    def fetch(self, ident: object, *, cache_up: bool, overwrite: bool = False) -> V | None:
        """After a miss: the value from the database, added to the cache if it answers.

        `overwrite` replaces a malformed entry (an `add` would keep it for its whole TTL).
        """
        value = self._load(str(ident))
        if value is not None and cache_up:
            operation = cache.set if overwrite else cache.add
            safe_call("set" if overwrite else "add", operation, self.key(ident), value, self.ttl(value))
        return value

    # --- writes ---------------------------------------------------------------------------

    def write_after_commit(self, *idents: object) -> None:
        """After the current transaction commits, load these entries again and write them (or drop)."""
        names = [str(ident) for ident in idents]
        if names:
            transaction.on_commit(lambda: self._write(names))

    def put_after_commit(self, values: Mapping[Any, V | None]) -> None:
        """After commit, write values the change already holds (None: the entry is gone)."""
        known = {str(ident): value for ident, value in values.items()}
        if known:
            transaction.on_commit(lambda: self._store(known))

    def retry_pending(self) -> None:
        """Write again, from the database, what an outage kept from the cache."""
        if self.pending:
            self._write(list(self.pending))

    def _write(self, idents: list[str]) -> None:
        if self._load_many is not None and len(idents) > 1:
            found = self._load_many(idents)
            values: dict[str, V | None] = {ident: found.get(ident) for ident in idents}
        else:
            values = {ident: self._load(ident) for ident in idents}
        self._store(values)

    def _store(self, values: Mapping[str, V | None]) -> None:
        """Set the values, one round trip per lifetime; drop the Nones; remember what failed."""
        groups: dict[int | None, dict[str, Any]] = defaultdict(dict)
        for ident, value in values.items():
            groups[None if value is None else self.ttl(value)][self.key(ident)] = value
        failed: set[str] = set()
        for ttl, entries in groups.items():
            if ttl is None:
                result = safe_call("delete_many", cache.delete_many, list(entries))
            else:
                result = safe_call("set_many", cache.set_many, entries, ttl)
            if result is FAILED:
                failed.update(key.removeprefix(f"{self.prefix}:") for key in entries)
        self.pending.difference_update(set(values) - failed)
        self.pending.update(failed)


def pending_writes() -> int:
    """Writes that an outage kept from the cache, over every family (this process)."""
    return sum(len(family.pending) for family in ReadThrough.families)


def retry_pending(families: Iterable[ReadThrough[Any]]) -> bool:
    """Retry the families' pending writes; whether there were any."""
    had = False
    for family in families:
        if family.pending:
            had = True
            family.retry_pending()
    return had


# --- the fast path: several keys in one MGET ------------------------------------------------


class _RawReader:
    """One `MGET` on a connection this thread keeps, for django-redis' default client.

    Written by hand because django-redis' `get_many` goes through redis-py's
    `Redis.execute_command`: a pool checkout, a retry wrapper and a connection check around
    the same `MGET`; the benchmark measured ~130 µs here against ~208 µs (issue 14).
    Same connection settings (the pool's), same key names (`make_key`), same decoding
    (`decode`). Any error is raised to the caller, which reads it as a miss, as with
    `get_many`; a connection that failed is dropped.

    With a near cache (`core.near_cache`, issue 26), keys under its prefix are answered from
    the process's memory when it holds them all and may serve them; otherwise the `MGET` goes
    out with a `PTTL` of each key in the same round trip, and what it finds is kept.
    """

    def __init__(self, backend: Any, near: NearCache | None = None) -> None:
        client = backend.client
        pool = client.get_client(write=False).connection_pool
        self._connection_class = pool.connection_class
        self._connection_kwargs = dict(pool.connection_kwargs)
        self._make_key = backend.make_key
        self._decode = client.decode
        self._local = threading.local()
        self.near = near

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

    @staticmethod
    def _send(connection: Any, raw: list[str], ttl: bool) -> list[Any]:
        if not ttl:
            connection.send_command("MGET", *raw)
            return list(connection.read_response())
        connection.send_packed_command(
            connection.pack_commands([("MGET", *raw), *(("PTTL", key) for key in raw)])
        )
        values = list(connection.read_response())
        return values + [connection.read_response() for _ in raw]

    def _read(self, raw: list[str], ttl: bool) -> list[Any]:
        from redis.exceptions import ConnectionError as RedisConnectionError

        connection, used = self._connection()
        try:
            try:
                values = self._send(connection, raw, ttl)
            except RedisConnectionError:
                # A kept connection the server closed meanwhile (a Redis restart): one new try.
                if not used:
                    raise
                connection.disconnect()
                values = self._send(connection, raw, ttl)
        except BaseException:
            connection.disconnect()
            self._local.used = False
            raise
        self._local.used = True
        return values

    def mget(self, keys: list[str], *, near: bool = True) -> dict[str, Any]:
        raw = [self._make_key(key) for key in keys]
        cache = self.near if near else None
        if cache is None or not all(key.startswith(cache.prefix) for key in raw):
            values = self._read(raw, ttl=False)
            return {
                key: self._decode(value) for key, value in zip(keys, values, strict=True) if value is not None
            }
        if cache.usable():
            held = cache.get(raw)
            if held is not None:
                return dict(zip(keys, held, strict=True))
        ticket = cache.ticket(raw)
        found = self._read(raw, ttl=True)
        values = [None if value is None else self._decode(value) for value in found[: len(raw)]]
        # PTTL: milliseconds left, -1 for a key without expiry, -2 for a key that is gone.
        ttls = [None if ms == -1 else ms / 1000 for ms in found[len(raw) :]]
        cache.fill(ticket, raw, values, ttls)
        return {key: value for key, value in zip(keys, values, strict=True) if value is not None}


_reader_for: list[Any] = [None, None]  # [the CACHES setting it was made for, the raw reader or None]


def _reader() -> _RawReader | None:
    """The raw reader for the default cache; None for a backend other than django-redis' default client.

    Keyed on the CACHES setting, not the backend object: Django gives each thread a backend
    object of its own, and the reader keeps a connection per thread.
    """
    config = settings.CACHES
    if _reader_for[0] is not config:  # first use, or the settings changed (tests)
        from django_redis.cache import RedisCache
        from django_redis.client import DefaultClient

        backend = caches["default"]
        usable = isinstance(backend, RedisCache) and type(backend.client) is DefaultClient
        reader = _RawReader(backend, _near_cache(backend)) if usable else None
        previous = _reader_for[1]
        _reader_for[:] = [config, reader]
        near_cache.install(reader.near if reader is not None else None)
        if previous is not None and previous.near is not None:
            previous.near.close()
    return _reader_for[1]  # type: ignore[no-any-return]


def _near_cache(backend: Any) -> NearCache | None:
    if not getattr(settings, "NEAR_CACHE", False):
        return None
    pool = backend.client.get_client(write=False).connection_pool
    kwargs = {
        **pool.connection_kwargs,
        "protocol": 3,
    }  # RESP3: the invalidations arrive on the same connection
    return NearCache(
        connect=lambda: pool.connection_class(**kwargs),
        prefix=backend.make_key(settings.NEAR_CACHE_PREFIX),
        max_entries=settings.NEAR_CACHE_MAX_ENTRIES,
        max_silence=settings.NEAR_CACHE_MAX_SILENCE,
    )


def read_many(keys: list[str], *, near: bool = True) -> Any:
    """The keys' values (absent keys left out) in one round trip, or `FAILED` if the cache raised.

    `near=False`: never from the process's near cache (a caller that knows it may be stale).
    """
    reader = _reader()
    if reader is None:
        return safe_call("get_many", cache.get_many, keys)
    try:
        with _GET_MANY_SECONDS.time():  # the cache's own get_many timing (core/metrics_cache.py)
            return reader.mget(keys, near=near)
    except Exception:
        logger.warning("cache mget failed", exc_info=True)
        return FAILED
