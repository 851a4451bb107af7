"""The processing-start limit, with the seed's semantics and keys.

- `start_processing_bloc:{user_id}` present: refused (429) until it expires;
- `start_processing:{user_id}` counts starts in a window of 60 s opened by the first one;
- a start when the count is already at `PROCESSING_RATE_LIMIT` is refused and sets the block
  for `PROCESSING_BLOCK_SECONDS`.

On Redis the check-and-count is one Lua script, so several gunicorn workers cannot both see
"4" and both start (a get-then-set would let them). On the in-process cache (the embedded
default: one process) a lock gives the same. A cache that fails refuses the start (503): a
limit that is "all clear" while Redis is down is no limit.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches

from core.errors import RateLimited
from core.ids import Id
from core.throttling import cache_failure_refuses

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60

# KEYS: counter, block. ARGV: limit, window, block seconds.
# Returns {1, count} for an accepted start, {0, seconds to wait} for a refusal.
_LUA = """
local blocked = redis.call('TTL', KEYS[2])
if blocked > 0 then return {0, blocked} end
if blocked == -1 then redis.call('EXPIRE', KEYS[2], ARGV[3]) return {0, tonumber(ARGV[3])} end
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], 1, 'EX', ARGV[3])
  return {0, tonumber(ARGV[3])}
end
count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return {1, count}
"""

_local_lock = threading.Lock()
_script: Any = None


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # seconds, when refused


def counter_key(user_id: Id) -> str:
    return f"start_processing:{user_id}"


def block_key(user_id: Id) -> str:
    return f"start_processing_bloc:{user_id}"


def _is_redis() -> bool:
    try:
        from django_redis.cache import RedisCache
    except ImportError:  # pragma: no cover - django-redis is a runtime requirement
        return False
    # `cache` is Django's ConnectionProxy, never an instance of a backend class: ask the backend itself.
    return isinstance(caches["default"], RedisCache)


def _redis_hit(user_id: Id) -> Verdict:
    global _script
    from django_redis import get_redis_connection

    client = get_redis_connection("default")
    if _script is None:
        _script = client.register_script(_LUA)
    keys = [cache.make_key(counter_key(user_id)), cache.make_key(block_key(user_id))]
    allowed, value = _script(
        keys=keys,
        args=[settings.PROCESSING_RATE_LIMIT, WINDOW_SECONDS, settings.PROCESSING_BLOCK_SECONDS],
        client=client,
    )
    return Verdict(bool(allowed), 0 if allowed else int(value))


def _local_hit(user_id: Id) -> Verdict:
    # The block's value is when it ends, since the in-process cache tells no TTL.
    now = time.time()
    with _local_lock:
        until = cache.get(block_key(user_id))
        if until is not None and until > now:
            return Verdict(False, max(1, int(until - now + 0.999)))
        count = cache.get(counter_key(user_id)) or 0
        if count >= settings.PROCESSING_RATE_LIMIT:
            block = settings.PROCESSING_BLOCK_SECONDS
            cache.set(block_key(user_id), now + block, block)
            return Verdict(False, block)
        try:
            if count == 0:
                raise ValueError
            cache.incr(counter_key(user_id))  # keeps the window's expiry
        except ValueError:  # no window yet, or it ended since the read: this start opens one
            cache.set(counter_key(user_id), 1, WINDOW_SECONDS)
        return Verdict(True, 0)


def processing_start_hit(*, user_id: Id) -> None:
    """Count one processing start; raises 429 (with Retry-After) over the limit, 503 on a cache failure."""
    with cache_failure_refuses(
        logger,
        "processing rate limit: the cache failed; refusing the start",
        "Processing cannot be started right now; try again shortly.",
        "rate_limit_unavailable",
    ):
        verdict = _redis_hit(user_id) if _is_redis() else _local_hit(user_id)
    if not verdict.allowed:
        raise RateLimited(
            f"Too many processing starts: at most {settings.PROCESSING_RATE_LIMIT} a minute. "
            f"Try again in {verdict.retry_after} s.",
            code="processing_rate_limited",
            retry_after=verdict.retry_after,
        )
