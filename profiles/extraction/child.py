"""The sandbox's side: a zygote process that forks one confined child per file.

Run as `python -m profiles.extraction.child FD` by `sandbox` (never imported by the web process
except for its constants): a fresh interpreter, started with an empty environment, that imports
the parsers once and then waits on the socket `FD` for requests. Each request brings the file
descriptor of a new socket; the zygote forks, and the child:

1. confines itself: CPU seconds (`RLIMIT_CPU`: SIGXCPU at the soft limit, SIGKILL one second
   later), memory (`RLIMIT_AS`: what it has plus the given bytes), a wall-clock alarm, no file
   written (`RLIMIT_FSIZE` 0), no core dump, a lower priority than the web workers;
2. reads the request (the format, the limits) from its socket, and maps the upload from the
   memory file (`memfd`) that came with it;
3. parses, with every log record counted and the first few kept;
4. sends back one reply and exits, giving all its memory back.

Why not `multiprocessing`: its children re-run the parent's main script (gunicorn's, manage.py's,
pytest's) before they start, and its process pools break for everyone when one child is killed.
Why a zygote instead of a fork of the web worker: the worker is threaded (another thread may hold
a lock at the fork) and holds database connections and secrets; the zygote holds neither.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import resource
import signal
import socket
import sys
import warnings
from multiprocessing.connection import Connection
from typing import Any

#: Parser warnings that come back with the result (the rest are counted only).
LOG_SAMPLES = 3
LOG_SAMPLE_CHARS = 200
#: The child's priority below the web workers' (0 is theirs, 19 the lowest).
CHILD_NICENESS = 10


class _SeekableMap(mmap.mmap):
    """A read-only map of the upload's memory file that `zipfile` takes as a file: Python 3.11's
    mmap has read, seek and tell, but not `seekable` (3.13 adds it)."""

    def __new__(cls, fd: int, size: int) -> _SeekableMap:
        return super().__new__(cls, fd, size, prot=mmap.PROT_READ)

    def seekable(self) -> bool:
        return True


class _OverLimit(BaseException):
    """Raised in the child by SIGXCPU or SIGALRM: the reply says which, then the child exits."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Collector(logging.Handler):
    """Counts every record and keeps the first few messages, cut short, for the reply."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.count = 0
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.samples) < LOG_SAMPLES:
            try:
                message = record.getMessage()
            except Exception:
                message = str(record.msg)
            self.samples.append(message[:LOG_SAMPLE_CHARS])


def _address_space_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _on_signal(reason: str) -> Any:
    def raise_over_limit(signum: int, frame: Any) -> None:
        raise _OverLimit(reason)

    return raise_over_limit


def _confine(cpu_seconds: int, memory_bytes: int, wall_seconds: int) -> None:
    with contextlib.suppress(OSError):
        os.nice(CHILD_NICENESS)
    signal.signal(signal.SIGXCPU, _on_signal("cpu"))
    signal.signal(signal.SIGALRM, _on_signal("time"))
    signal.alarm(wall_seconds)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    ceiling = _address_space_bytes() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _child(conn: Connection, upload_fd: int) -> None:
    from . import parsers

    kind, cpu_seconds, memory_bytes, max_chars, wall_seconds = conn.recv()
    # Confined before the bytes are read: the request's own size counts against the memory.
    _confine(cpu_seconds, memory_bytes, wall_seconds)
    collector = _Collector()
    root = logging.getLogger()
    root.handlers = [collector]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)
    warnings.simplefilter("always")
    reply: dict[str, Any]
    try:
        # The upload's memory file, mapped read-only: no copy of its bytes through a socket into
        # a fresh heap (that copy was most of the sandbox's cost per file).
        size = os.fstat(upload_fd).st_size
        data: Any = _SeekableMap(upload_fd, size) if size else b""
        reply = {"text": parsers.PARSERS[kind](data, max_chars)}
    except parsers.Refusal as refusal:
        reply = {"refused": (refusal.status, refusal.code, refusal.detail)}
    except MemoryError:
        reply = {"limit": "memory"}
    except _OverLimit as over:
        reply = {"limit": over.reason}
    except BaseException as exc:  # whatever it is, the parent hears of it
        reply = {"error": type(exc).__name__}
    data = b""
    reply["warnings"] = collector.count
    reply["samples"] = collector.samples
    signal.alarm(0)
    # JSON, not a pickle: the parent unpickling what a child sends would let a parser exploited
    # by its file run code in the web process, the one thing the sandbox is there to prevent.
    conn.send_bytes(json.dumps(reply).encode())


def _load_parsers() -> None:
    """Parse a small PDF and DOCX once, here: whatever the parsers import or build on first use
    is then in every forked child already, instead of being done again for each file."""
    import io

    import docx
    from pypdf import PdfWriter

    from . import parsers

    pdf = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(width=72, height=72)
    writer.write(pdf)
    document = io.BytesIO()
    docx.Document().save(document)
    for kind, data in (("pdf", pdf.getvalue()), ("docx", document.getvalue())):
        with contextlib.suppress(parsers.Refusal):  # no text in either: only the loading mattered
            parsers.PARSERS[kind](data, 100)


def serve(control_fd: int) -> None:
    """The zygote's loop: one fork per received socket, until the web process closes its end."""
    _load_parsers()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    control = socket.socket(fileno=control_fd)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1, 2)
        except (ConnectionError, OSError):
            return
        if not message or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            return  # the web process has gone
        if os.fork() == 0:
            control.close()
            code = 0
            try:
                _child(Connection(fds[0]), fds[1])
            except BaseException:
                code = 1
            os._exit(code)
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
