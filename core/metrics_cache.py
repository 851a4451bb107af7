"""Cache backends that time every call.

django-prometheus' backends count `get` hits and misses only; the service
reads with `get_many` and writes with `set`/`set_many`/`add`, so the timing
of each operation is added here, on top of theirs (a thin subclass: no
library does it). The in-process cache counts its own hits: django-prometheus'
`LocMemCache.get` answers `default` for a cached 0 or "" (`cached or default`).
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import locmem
from django_prometheus.cache.backends.redis import RedisCache as PrometheusRedisCache
from django_prometheus.cache.metrics import (
    django_cache_get_total,
    django_cache_hits_total,
    django_cache_misses_total,
)

from . import near_cache
from .metrics import CACHE_SECONDS

_GET = CACHE_SECONDS.labels(operation="get")
_GET_MANY = CACHE_SECONDS.labels(operation="get_many")
_SET = CACHE_SECONDS.labels(operation="set")
_SET_MANY = CACHE_SECONDS.labels(operation="set_many")
_ADD = CACHE_SECONDS.labels(operation="add")
_DELETE = CACHE_SECONDS.labels(operation="delete")
_DELETE_MANY = CACHE_SECONDS.labels(operation="delete_many")
_INCR = CACHE_SECONDS.labels(operation="incr")


class TimedCacheMixin:
    """Wraps the calls the service makes; a failing call is timed too, then raises as before."""

    def get(self, *args: Any, **kwargs: Any) -> Any:
        with _GET.time():
            return super().get(*args, **kwargs)  # type: ignore[misc]

    def get_many(self, *args: Any, **kwargs: Any) -> Any:
        with _GET_MANY.time():
            return super().get_many(*args, **kwargs)  # type: ignore[misc]

    def set(self, *args: Any, **kwargs: Any) -> Any:
        with _SET.time():
            return super().set(*args, **kwargs)  # type: ignore[misc]

    def set_many(self, *args: Any, **kwargs: Any) -> Any:
        with _SET_MANY.time():
            return super().set_many(*args, **kwargs)  # type: ignore[misc]

    def add(self, *args: Any, **kwargs: Any) -> Any:
        with _ADD.time():
            return super().add(*args, **kwargs)  # type: ignore[misc]

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        with _DELETE.time():
            return super().delete(*args, **kwargs)  # type: ignore[misc]

    def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        with _DELETE_MANY.time():
            return super().delete_many(*args, **kwargs)  # type: ignore[misc]

    def incr(self, *args: Any, **kwargs: Any) -> Any:
        with _INCR.time():
            return super().incr(*args, **kwargs)  # type: ignore[misc]


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], position: int, name: str) -> Any:
    return args[position] if len(args) > position else kwargs.get(name)


class NearCacheWritesMixin:
    """Every write drops its keys from this process's near cache (`core.near_cache`) at once.

    Redis' invalidation of the same keys follows anyway; this one needs no round trip, so the
    process that wrote never serves what it just replaced. Done after the write, failed or not: a
    write that raised may still have reached Redis.
    """

    def _forget(self, keys: Any, version: Any) -> None:
        near_cache.forget(self.make_key(key, version=version) for key in keys)  # type: ignore[attr-defined]

    def set(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().set(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._forget([_argument(args, kwargs, 0, "key")], _argument(args, kwargs, 3, "version"))

    def add(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().add(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._forget([_argument(args, kwargs, 0, "key")], _argument(args, kwargs, 3, "version"))

    def set_many(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().set_many(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._forget(
                list(_argument(args, kwargs, 0, "data") or ()), _argument(args, kwargs, 2, "version")
            )

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().delete(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._forget([_argument(args, kwargs, 0, "key")], _argument(args, kwargs, 1, "version"))

    def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().delete_many(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._forget(
                list(_argument(args, kwargs, 0, "keys") or ()), _argument(args, kwargs, 1, "version")
            )

    def incr(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().incr(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._forget([_argument(args, kwargs, 0, "key")], _argument(args, kwargs, 2, "version"))

    def clear(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().clear(*args, **kwargs)  # type: ignore[misc]
        finally:
            near_cache.clear()


class RedisCache(TimedCacheMixin, NearCacheWritesMixin, PrometheusRedisCache):
    pass


_MISSING = object()


class LocMemCache(TimedCacheMixin, locmem.LocMemCache):
    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        django_cache_get_total.labels(backend="locmem").inc()
        value = super().get(key, _MISSING, version)
        if value is _MISSING:
            django_cache_misses_total.labels(backend="locmem").inc()
            return default
        django_cache_hits_total.labels(backend="locmem").inc()
        return value
