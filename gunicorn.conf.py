"""gunicorn's settings, read from the environment (the Dockerfile's and `make serve`'s server).

| variable | default | |
|---|---|---|
| `GUNICORN_BIND` | `$HOST:$PORT`, `0.0.0.0:8000` | where to listen |
| `WEB_CONCURRENCY` | `2` | worker processes (about one per core) |
| `GUNICORN_THREADS` | `8` | threads per worker (more than 1: threaded workers; 1: the sync worker) |
| `GUNICORN_WORKER_CLASS` | `core.gunicorn_worker.SharedPollWorker` | the threaded worker (`gthread`: gunicorn's own, 0.85-0.92x the warm reads/s) |
| `GUNICORN_TIMEOUT` | `30` | seconds a request may take before its worker is restarted |
| `GUNICORN_GRACEFUL_TIMEOUT` | `30` | seconds a stopping worker has to finish its requests (SIGTERM) |
| `GUNICORN_KEEPALIVE` | `5` | seconds an idle keep-alive connection is held |
| `GUNICORN_MAX_REQUESTS` | `0` | restart a worker after this many requests (0: never) |
| `GUNICORN_ACCESS_LOG` | `-` | access log target (`-`: stdout; empty: off) |
| `PROMETHEUS_MULTIPROC_DIR` | a fresh temporary folder | where the workers' metric files live |
"""

from __future__ import annotations

import gc
import os
import select
import shutil
import tempfile
from typing import Any

from core import metrics_process


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


# In a container the port is published by the engine: listen on every interface there.
_ALL_INTERFACES = "0.0.0.0"  # noqa: S104
bind = (
    os.environ.get("GUNICORN_BIND")
    or f"{os.environ.get('HOST', _ALL_INTERFACES)}:{os.environ.get('PORT', '8000')}"
)
workers = _int("WEB_CONCURRENCY", 2)
# Threads, not one request per process: a login's bcrypt hash takes ~200 ms of CPU and releases
# the GIL, so while it runs the worker's other threads serve the reads. With sync workers a read
# that landed on a worker busy hashing waited for the hash (reads' p99 270-460 ms where logins take
# a core). Eight, not four: a few logins at once in one worker must leave threads for the reads
# (with four, bursts of logins filled the pool and reads queued ~270 ms). benchmarks/README.md.
threads = _int("GUNICORN_THREADS", 8)
# gthread's request handling without its hand-off between a poller thread and the pool: each
# thread polls the worker's epoll itself (core/gunicorn_worker.py; Linux only, gthread elsewhere).
_THREADED = "core.gunicorn_worker.SharedPollWorker" if hasattr(select, "epoll") else "gthread"
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or (_THREADED if threads > 1 else "sync")
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10
_SHM = "/dev/shm"  # noqa: S108  (gunicorn's own advice for containers)
if os.path.isdir(_SHM):
    worker_tmp_dir = _SHM  # the heartbeat file: in memory, not on a container's overlay disk

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
# No query string (it may carry codes or tokens); the request id links the line to the app's own.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s" request_id=%({x-request-id}o)s'
logger_class = "core.logging_gunicorn.ServiceLogger"

# Counters add up across workers: each worker writes its own files in one folder.
_OWN_METRICS_DIR: str | None = None
if not metrics_process.multiprocess_dir():
    _OWN_METRICS_DIR = os.environ[metrics_process.ENV] = tempfile.mkdtemp(prefix="user-service-metrics-")


def on_starting(server: Any) -> None:
    metrics_process.clear_own_files()


def child_exit(server: Any, worker: Any) -> None:
    metrics_process.mark_dead(worker.pid)


def post_worker_init(worker: Any) -> None:
    """Finish loading in the worker, then take what was loaded out of the garbage collector's sight.

    The URLconf (and with it every view, serializer and service module) loads
    here instead of in the first request. `gc.freeze()` then moves the ~130,000
    objects of the loaded code into the permanent generation: they live as long
    as the worker, and a full collection no longer walks them. Measured under
    benchmarks/load_mix.py, a full collection took 80-100 ms with them, a pause
    of every thread of the worker, twice a minute; the reads' p99 showed it.
    """
    from django.urls import get_resolver

    from profiles.extraction import sandbox

    get_resolver().url_patterns  # noqa: B018  (loads the URLconf's modules)
    gc.freeze()
    # The worker's own zygote for uploads' text extraction: started now, not in the first upload.
    sandbox.warm_up()


def on_exit(server: Any) -> None:
    if _OWN_METRICS_DIR is not None:  # a folder of our own making: nobody else reads it
        shutil.rmtree(_OWN_METRICS_DIR, ignore_errors=True)
