"""Run a parser on a stranger's bytes in a confined child process, never in the web process.

Why a process: a hostile PDF or DOCX can send pypdf or lxml into minutes of CPU (one flate stream
shared by a thousand pages) or gigabytes of memory (16 MiB of `<w:p/>`), and no check on the
bytes up front sees it coming. Only the operating system bounds it whatever the parser does, so
each file is parsed by a child of this web process's zygote (`child.py` says how it is confined),
and the web process only waits for the answer, at most the wall-clock deadline.

Cost: the zygote is started once per web process (a fresh interpreter with the parsers loaded,
~50 MB); a file then pays for one copy of its bytes into a memory file (`memfd`, which the child
maps instead of reading) and one fork (`benchmarks/uploads.py` measures it against parsing
in-process).

Admission: at most `slots` extractions at once per web process, and at most as many waiting for
one; the rest are refused at once (`Busy`, a 503). The web worker's threads serve every other
request too: without this bound, a burst of hostile uploads would hold them all.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

from . import parsers
from .child import LOG_SAMPLE_CHARS, LOG_SAMPLES

logger = logging.getLogger(__name__)

_PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Seconds the parent waits beyond the child's own alarm before it gives up on the answer.
_WALL_GRACE_SECONDS = 2
_COPY_CHUNK = 1024 * 1024
#: What a child's reply may take beyond its text (the refusal's words, the warnings' samples).
_REPLY_ROOM = 64 * 1024


class ParseLimit(Exception):
    """The child went past a bound (`reason`: cpu, memory, time or crashed) and was ended."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Busy(Exception):
    """Every extraction slot of this process is taken, and so is the short queue for them."""


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int
    memory_bytes: int
    max_chars: int
    #: The wall-clock deadline (whole seconds: the child's alarm); a child needs about its CPU
    #: seconds in wall time, more on a busy machine since it runs at a lower priority.
    wall_seconds: int


class _Zygote:
    """This process's zygote: started on first use, again after a fork (gunicorn) or its death."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner_pid = 0
        self._control: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with theirs:
            # An empty environment: no secret (SECRET_KEY, DATABASE_URL, ...) reaches the parsers.
            self._process = subprocess.Popen(  # noqa: S603  (our own interpreter and module)
                [sys.executable, "-E", "-s", "-m", "profiles.extraction.child", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                cwd=_PROJECT_ROOT,
                env={},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        self._control, self._owner_pid = ours, os.getpid()

    def _alive(self) -> bool:
        return (
            self._control is not None
            and self._owner_pid == os.getpid()
            and self._process is not None
            and self._process.poll() is None
        )

    def ensure_running(self) -> None:
        with self._lock:
            self._restart_if_gone()

    def _restart_if_gone(self) -> None:  # under the lock
        if not self._alive():
            self._stop()
            self._start()

    def _stop(self) -> None:
        if self._control is not None and self._owner_pid == os.getpid():
            self._control.close()  # the zygote sees the end and exits
        if self._process is not None and self._owner_pid == os.getpid():
            try:
                self._process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._control, self._process = None, None

    def child(self, upload_fd: int) -> socket.socket:
        """A socket to a freshly forked child, which gets `upload_fd` (the file to parse) too."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with theirs, self._lock:
            for attempt in (1, 2):
                self._restart_if_gone()
                assert self._control is not None
                try:
                    socket.send_fds(self._control, [b"x"], [theirs.fileno(), upload_fd])
                    return ours
                except OSError:
                    if attempt == 2:
                        ours.close()
                        raise
                    self._stop()  # it died since: one more start
        raise AssertionError("unreachable")


_zygote = _Zygote()


def warm_up() -> None:
    """Start this process's zygote now, so that the first upload does not wait for it."""
    _zygote.ensure_running()


class _Admission:
    """At most `slots` extractions at once in this process, and at most as many waiting for one."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0
        self._waiting = 0

    def enter(self, slots: int, wait_seconds: float) -> bool:
        with self._changed:
            if self._running < slots:
                self._running += 1
                return True
            if self._waiting >= slots:
                return False
            self._waiting += 1
            try:
                if not self._changed.wait_for(lambda: self._running < slots, timeout=wait_seconds):
                    return False
                self._running += 1
                return True
            finally:
                self._waiting -= 1

    def leave(self) -> None:
        with self._changed:
            self._running -= 1
            self._changed.notify()


_admission = _Admission()


def extract(kind: str, data: bytes | IO[bytes], limits: Limits, *, slots: int, wait_seconds: float) -> str:
    """The text of `data` (bytes or a readable file) parsed as `kind` (a key of `parsers.PARSERS`)
    by a child within `limits`.

    Raises `parsers.Refusal` (the file is refused: 413 or 415), `ParseLimit` (the child passed a
    bound and was ended) or `Busy` (no slot free in time).
    """
    if kind not in parsers.PARSERS:
        raise ValueError(f"no parser for {kind!r}")
    if not _admission.enter(slots, wait_seconds):
        raise Busy()
    try:
        reply = _ask_child(kind, data, limits)
    finally:
        _admission.leave()
    if reply.get("warnings"):
        # One line however many the parser wrote (thousands, for some files); ascii() escapes
        # every newline and control character a file may put in a warning, so a forged log
        # line stays inside this one.
        logger.info(
            "%s parser warned %d times about an upload; the first: %s",
            kind,
            reply["warnings"],
            ascii(reply["samples"]),
        )
    if "refused" in reply:
        status, code, detail = reply["refused"]
        raise parsers.Refusal(status, code, detail)
    if "limit" in reply:
        raise ParseLimit(reply["limit"])
    if "error" in reply:  # a parser bug rather than a bad file; either way it cannot be read
        raise parsers.Refusal(415, f"{kind}_unreadable", f"The file cannot be read ({reply['error']}).")
    return str(reply["text"])


def _upload_file(data: bytes | IO[bytes]) -> int:
    """The bytes in an anonymous memory file (`memfd`), read from the start: the child maps it.

    One copy, in chunks (an upload spooled to disk is never whole in this process's memory).
    """
    fd = os.memfd_create("upload", os.MFD_CLOEXEC)
    try:
        with open(fd, "wb", closefd=False) as out:
            if isinstance(data, bytes | bytearray):
                out.write(data)
            else:
                shutil.copyfileobj(data, out, _COPY_CHUNK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _ask_child(kind: str, data: bytes | IO[bytes], limits: Limits) -> dict[str, Any]:
    upload_fd = _upload_file(data)
    try:
        conn = Connection(_zygote.child(upload_fd).detach())
    finally:
        os.close(upload_fd)  # the child has its own descriptor of it now
    try:
        conn.send((kind, limits.cpu_seconds, limits.memory_bytes, limits.max_chars, limits.wall_seconds))
        if not conn.poll(limits.wall_seconds + _WALL_GRACE_SECONDS):
            return {"limit": "time"}  # closing our end below; the child's alarm ends it
        # Bounded: the text (at most `max_chars`, 6 bytes each in JSON at worst) and a little more.
        return _checked_reply(conn.recv_bytes(maxlength=6 * limits.max_chars + _REPLY_ROOM))
    except (EOFError, OSError):
        # The child is gone without a word: SIGKILL past the hard CPU limit, a failed allocation
        # outside Python's reach, or a crash in a parser's C code. Each is a file we won't parse.
        return {"limit": "crashed"}
    finally:
        conn.close()


def _checked_reply(raw: bytes) -> dict[str, Any]:
    """The child's reply as `extract` reads it, or "crashed" when it is not one a child of ours
    sends (the child ran a stranger's file: what it says is checked like any input, and not
    with `assert`, which `python -O` drops)."""
    try:
        reply = json.loads(raw)
        if not _well_formed(reply):
            raise ValueError("not a reply")
    except ValueError:
        logger.warning("an extraction child sent a reply that is not one of ours; treated as crashed")
        return {"limit": "crashed", "warnings": 0, "samples": []}
    reply["samples"] = [sample[:LOG_SAMPLE_CHARS] for sample in reply["samples"][:LOG_SAMPLES]]
    return reply


def _well_formed(reply: Any) -> bool:
    if not isinstance(reply, dict) or not isinstance(reply.get("warnings"), int):
        return False
    samples = reply.get("samples")
    if not isinstance(samples, list) or not all(isinstance(sample, str) for sample in samples):
        return False
    if "text" in reply:
        return isinstance(reply["text"], str)
    if "refused" in reply:
        refused = reply["refused"]
        return (
            isinstance(refused, list)
            and len(refused) == 3
            and refused[0] in (413, 415)
            and all(isinstance(part, str) for part in refused[1:])
        )
    return isinstance(reply.get("limit"), str) or isinstance(reply.get("error"), str)
