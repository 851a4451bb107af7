"""A near cache in each process for the hottest Redis keys, kept correct by Redis' own invalidation.

A warm authenticated request read its user, session and touch marker with one `MGET`: a round trip
to Redis, the largest fixed cost left on the path (issue 26). Here each process keeps the values it
read, and Redis tells it when any of them changes: server-assisted client-side caching
(`CLIENT TRACKING`, Redis 6.0 and later) in broadcast mode, on one connection of the process's own.

Written by hand on purpose: redis-py's built-in client-side cache (`CacheConfig`) refuses servers
older than 7.4 (Debian 12 ships 7.0.15), and it tracks keys per data connection, which this
service's per-thread raw connections (`core.read_through._RawReader`) would each have to carry.
Broadcast mode needs no per-connection state on the server: one connection per process says
`CLIENT TRACKING ON BCAST PREFIX <prefix>` (RESP3, so the invalidations come back on it as push
messages), and Redis sends it the name of every key under the prefix that any client changes,
deletes, or that expires or is evicted, and a flush of everything on `FLUSHDB`/`FLUSHALL`.

The rules, so that a revoked session is never served as live (API.md: a revocation takes effect on
the very next request):

- **Invalidations are applied before a value is served.** Every read first looks at the tracking
  connection (one `poll`, no wait) and applies whatever Redis has sent, in the requesting thread:
  no background thread that might not have been scheduled yet. Redis queues the invalidation of a
  write before it answers the write, so by the time a logout's response reaches its client, the
  other workers' invalidation is on its way ahead of any request that client can send.
- **A fill never outlives an invalidation it raced with.** A value read from Redis is stored only if
  no invalidation of its key (nor a flush) arrived between the moment the read was sent and the
  moment it is stored (`ticket`/`fill`, striped counters): otherwise a write landing just after
  the read could be applied before the stale value is stored, and never again.
- **No evidence, no near cache.** The tracking connection is pinged every `max_silence / 4`; the
  near cache is used only while Redis answered a ping sent less than `max_silence` ago (its
  answer proves every invalidation queued before it was read). A Redis that stops answering
  (frozen, partitioned) therefore stops the near cache within `max_silence`, which the settings
  keep below the cache's socket timeout: a revocation whose cache write timed out (so that no
  invalidation will come) is answered after that timeout, when every worker already reads
  through Redis again, and from there falls back to the database.
- **Doubt empties it.** A lost tracking connection, an error on it, a fork, a flush: everything is
  dropped, and reads go to Redis until the connection is back (retried at most once a second).
- **Writes of this process drop their keys at once** (`forget`), without waiting for the echo.
- Entries live no longer than their key's time to live in Redis (read with `PTTL` in the same round
  trip as the values), so the bounds that rest on an entry's lifetime (`SESSION_STATE_TTL`) hold.
- At most `max_entries` entries (the oldest go first); values are shared between threads and are
  read-only.
"""

from __future__ import annotations

import collections
import logging
import os
import select
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

logger = logging.getLogger(__name__)

# Forks of this process so far, counted in the child: a check per request without a getpid() call.
_forks = [0]
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))

_STRIPES = 256  # invalidation counters: a fill compares its keys' counters, not one global one
_RECONNECT_SECONDS = 1.0


def _stripe(key: str) -> int:
    return zlib.crc32(key.encode()) % _STRIPES


class Ticket(NamedTuple):
    generation: int
    stripes: tuple[int, ...]
    sent: float  # monotonic clock


class NearCache:
    """One process's near cache of the keys under `prefix` (the raw Redis key prefix).

    `connect()` returns a new redis-py connection (RESP3) to the server the values are read from.
    """

    def __init__(
        self,
        *,
        connect: Callable[[], Any],
        prefix: str,
        max_entries: int,
        max_silence: float,
    ) -> None:
        self.prefix = prefix
        self.max_entries = max_entries
        self.max_silence = max_silence
        self._connect = connect
        self._entries: dict[str, tuple[Any, float]] = {}  # raw key -> (value, expiry on the monotonic clock)
        self._stripes = [0] * _STRIPES
        self._generation = 0
        self._lock = threading.Lock()  # the tracking connection, and the entries when they change
        self._connection: Any = None
        self._local = threading.local()
        self._forks = _forks[0]
        self._retry_at = 0.0
        self._pings: collections.deque[float] = collections.deque()  # send times of unanswered pings
        self._last_ping = 0.0
        self._evidence = float("-inf")  # send time of the latest ping Redis answered
        self.invalidations = 0  # counted for tests and the benchmark

    # --- the tracking connection ------------------------------------------------------------

    def _open(self) -> None:
        connection = self._connect()
        try:
            connection.connect()
            connection._parser.set_invalidation_push_handler(self._on_invalidate)
            connection.send_command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", self.prefix)
            answer = connection.read_response()
            if answer not in (b"OK", "OK"):
                raise RuntimeError(f"CLIENT TRACKING answered {answer!r}")
        except BaseException:
            connection.disconnect()
            raise
        self._connection = connection
        self._pings.clear()
        self._evidence = float("-inf")
        self._last_ping = 0.0

    def _drop(self, reason: str) -> None:
        """Forget everything and the connection (the caller holds the lock)."""
        if self._connection is not None:
            logger.warning("near cache off until Redis' tracking connection is back: %s", reason)
            try:
                self._connection.disconnect()
            except Exception:
                logger.debug("closing the tracking connection", exc_info=True)
        self._connection = None
        self._clear()
        self._retry_at = time.monotonic() + _RECONNECT_SECONDS

    def _clear(self) -> None:
        self._generation += 1
        self._entries = {}

    def _on_invalidate(self, message: list[Any]) -> None:
        """A RESP3 push `["invalidate", [key, ...]]`, or `["invalidate", None]` for a flush."""
        self.invalidations += 1
        keys = message[1] if len(message) > 1 else None
        if keys is None:
            self._clear()
            return
        for raw in keys:
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            self._stripes[_stripe(key)] += 1
            self._entries.pop(key, None)

    def _drain(self) -> None:
        """Apply what the connection has brought (the caller holds the lock)."""
        connection = self._connection
        while connection.can_read(0):
            answer = connection.read_response(push_request=True)
            if answer in (b"PONG", "PONG"):
                if self._pings:
                    self._evidence = self._pings.popleft()
            elif answer is not None and not isinstance(answer, list):
                raise RuntimeError(f"unexpected answer on the tracking connection: {answer!r}")

    def _poller_for(self, connection: Any) -> Any:
        """This thread's `poll` object for the connection's socket (one object cannot be polled by two
        threads at once: "concurrent poll() invocation")."""
        local = self._local
        if getattr(local, "connection", None) is not connection:
            poller = select.poll()
            poller.register(connection._sock.fileno(), select.POLLIN | select.POLLPRI)
            local.connection, local.poller = connection, poller
        return local.poller

    def usable(self) -> bool:
        """Whether the entries may be served now: invalidations applied, Redis heard from lately."""
        now = time.monotonic()
        if _forks[0] != self._forks:  # a forked child: the parent's connection is not ours to use
            with self._lock:
                if _forks[0] != self._forks:
                    self._forks, self._connection = _forks[0], None
                    self._clear()
                    self._retry_at = 0.0
        connection = self._connection
        if connection is None:
            if now < self._retry_at:
                return False
            with self._lock:
                if self._connection is None and now >= self._retry_at:
                    try:
                        self._open()
                    except Exception as exc:
                        self._drop(f"cannot connect: {exc}")
                        return False
            connection = self._connection
            if connection is None:
                return False
        poller = self._poller_for(connection)
        ping_due = now - self._last_ping >= self.max_silence / 4
        # `locked()`: another thread may have read an invalidation off the socket and not applied it yet.
        if ping_due or self._lock.locked() or poller.poll(0):
            with self._lock:
                if self._connection is None:
                    return False
                try:
                    self._drain()
                    if self._pings and now - self._pings[0] > 4 * self.max_silence:
                        raise TimeoutError("Redis did not answer a ping")
                    if now - self._last_ping >= self.max_silence / 4:
                        self._last_ping = time.monotonic()
                        self._connection.send_command("PING")
                        self._pings.append(self._last_ping)
                except Exception as exc:
                    self._drop(f"{type(exc).__name__}: {exc}")
                    return False
        return now - self._evidence < self.max_silence

    # --- the entries --------------------------------------------------------------------------

    def get(self, keys: list[str]) -> list[Any] | None:
        """The values of every key, or None unless all of them are here and current."""
        now = time.monotonic()
        entries = self._entries
        values = []
        for key in keys:
            entry = entries.get(key)
            if entry is None or entry[1] <= now:
                return None
            values.append(entry[0])
        return values

    def ticket(self, keys: list[str]) -> Ticket:
        """Taken before a read is sent: what `fill` compares to see whether an invalidation raced it."""
        return Ticket(self._generation, tuple(self._stripes[_stripe(key)] for key in keys), time.monotonic())

    def fill(self, ticket: Ticket, keys: list[str], values: list[Any], ttls: list[float | None]) -> None:
        """Store what a read found (`ttls`: seconds left in Redis, None for none), unless it was raced.

        An entry's life is counted from the moment the read was sent, so it never outlives the key.
        """
        with self._lock:
            if (
                self._connection is None
                or self._generation != ticket.generation
                or tuple(self._stripes[_stripe(key)] for key in keys) != ticket.stripes
            ):
                return
            now = ticket.sent
            for key, value, ttl in zip(keys, values, ttls, strict=True):
                if value is None or (ttl is not None and ttl <= 0):
                    continue
                if len(self._entries) >= self.max_entries:
                    del self._entries[next(iter(self._entries))]  # the oldest
                self._entries[key] = (value, now + ttl if ttl is not None else float("inf"))

    def forget(self, keys: Iterable[str]) -> None:
        """This process changed these keys: drop them now, and fail any fill that read them before."""
        with self._lock:
            for key in keys:
                if key.startswith(self.prefix):
                    self._stripes[_stripe(key)] += 1
                    self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and _forks[0] == self._forks:
                self._connection.disconnect()
            self._connection = None
            self._clear()

    def __len__(self) -> int:
        return len(self._entries)


_current: list[NearCache | None] = [None]


def install(near: NearCache | None) -> None:
    """The near cache of the process's default cache (`core.read_through` makes it)."""
    _current[0] = near


def forget(keys: Iterable[str]) -> None:
    """The cache backend wrote these raw keys: drop them from the near cache, if there is one."""
    near = _current[0]
    if near is not None:
        near.forget(keys)


def clear() -> None:
    near = _current[0]
    if near is not None:
        near.clear()
