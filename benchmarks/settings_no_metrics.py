"""The service's settings without its metrics layer: for `hot_path.py --variant` only, never deployed.

    python benchmarks/hot_path.py --variant nometrics:DJANGO_SETTINGS_MODULE=benchmarks.settings_no_metrics

What a request costs with django-prometheus' two middlewares, its database wrapper and the timed
cache backend left out; everything else is `config.settings` as it is.
"""

from config.settings import *  # noqa: F403
from config.settings import CACHES, DATABASES, MIDDLEWARE

MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("django_prometheus.")]
for _database in DATABASES.values():
    _database["ENGINE"] = _database["ENGINE"].replace("django_prometheus.db.backends.", "django.db.backends.")
for _cache in CACHES.values():
    _cache["BACKEND"] = {
        "core.metrics_cache.RedisCache": "django_redis.cache.RedisCache",
        "core.metrics_cache.LocMemCache": "django.core.cache.backends.locmem.LocMemCache",
    }.get(_cache["BACKEND"], _cache["BACKEND"])
