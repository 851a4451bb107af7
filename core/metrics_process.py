"""prometheus_client's multiprocess mode, set up before any metric exists.

With `PROMETHEUS_MULTIPROC_DIR` set, each process writes its counters to its
own files in that folder and a scrape adds them up. prometheus_client names
the files by pid; here they are named by host *and* pid, so containers that
share the folder (the compose set's web, worker and consumer: each has its
own pid 1, 7, ...) never write into one another's files.

Kept free of Django imports: the settings module calls it first thing.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from prometheus_client import values

ENV = "PROMETHEUS_MULTIPROC_DIR"


def _identify() -> str:
    # The collector splits file names on "_": keep it out of the identifier.
    host = socket.gethostname().replace("_", "-") or "host"
    return f"{host}-{os.getpid()}"


_identity = [_identify()]
# A forked child (a gunicorn worker, a Celery pool process) is another process: its own files.
os.register_at_fork(after_in_child=lambda: _identity.__setitem__(0, _identify()))


def process_identifier() -> str:
    """This process's host and pid, computed once per process (and again in a forked child).

    prometheus_client calls it on every `inc()`, with its one lock held, to notice a fork. Computed
    each time it cost two system calls (`uname` for the host name, `getpid`) per write, 18 writes a
    request; `gethostname` lets other threads run while the lock is held, and under gthread workers
    they queued on that lock (issue 26: the lock convoy).
    """
    return _identity[0]


def multiprocess_dir() -> str | None:
    return os.environ.get(ENV) or None


def configure() -> None:
    """Switch prometheus_client to host-qualified multiprocess files when the folder is set."""
    folder = multiprocess_dir()
    if folder is None:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    if getattr(values.ValueClass, "_user_service", False):
        return  # configured already (the settings module can be imported more than once in tests)
    value_class = values.MultiProcessValue(process_identifier)
    value_class._user_service = True  # type: ignore[attr-defined]
    values.ValueClass = value_class


def clear_own_files(folder: str | None = None) -> None:
    """Remove this host's files (a restarted server starts its counters again; others' stay)."""
    folder = folder or multiprocess_dir()
    if folder is None or not Path(folder).is_dir():
        return
    host = process_identifier().rsplit("-", 1)[0]
    for path in Path(folder).glob(f"*_{host}-[0-9]*.db"):
        path.unlink(missing_ok=True)


def mark_dead(pid: int) -> None:
    """gunicorn's child_exit: drop a dead worker's live gauges (its counters stay counted)."""
    from prometheus_client import multiprocess

    folder = multiprocess_dir()
    if folder is not None:
        host = process_identifier().rsplit("-", 1)[0]
        multiprocess.mark_process_dead(f"{host}-{pid}", folder)  # type: ignore[arg-type]
