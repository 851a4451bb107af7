"""The service's settings with the near cache off: for `hot_path.py --variant` only, never deployed.

    python benchmarks/hot_path.py --variant nonear:DJANGO_SETTINGS_MODULE=benchmarks.settings_no_near_cache

Every warm read then makes its one `MGET` round trip to Redis, as before issue 26.
"""

from config.settings import *  # noqa: F403

NEAR_CACHE = False
