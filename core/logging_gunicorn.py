"""gunicorn's access log in the service's format.

Plain: gunicorn's own line (`access_log_format` in gunicorn.conf.py). JSON
(`LOG_FORMAT=json`): one object a line with the same keys as the service's
lines; built here because gunicorn's format atoms are not escaped, so a quote
in a user agent would break a JSON template. Paths are logged without their
query string, which may carry codes or tokens.

Two costs of gunicorn's own logger are paid down here (issue 26), with the
same lines as output:

- `Logger.atoms` builds every atom for every line: the time, each request
  and response header, each WSGI variable, and quotes escaped in all of them.
  Only the atoms the format names are built here (`_atoms`), escaped as
  gunicorn's `SafeAtoms` escapes them; a format with an atom not handled here
  goes to gunicorn's own code.
- gunicorn writes through a `logging.StreamHandler`, which holds its lock
  across the `write` to stdout. In a threaded worker the write lets other
  threads run, and each one that logs then waits on the lock: a convoy of
  context switches on every request. `LineWriter` writes each record as one
  `write(2)` of a whole line, without a lock: a write of a whole line is not
  torn (a pipe keeps writes up to PIPE_BUF, 4 KiB, together; a line past that
  is written in parts, as the stream handler also did).
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from gunicorn.glogging import Logger

_ATOM = re.compile(r"%\(([^)]+)\)")
#: The atoms `_atoms` builds itself; `{name}i`, `{name}o` and `{name}e` are handled too.
_SIMPLE = frozenset(["h", "m", "U", "q", "H", "s", "B", "b", "M", "D", "T", "L", "a", "f", "l", "r"])


@lru_cache(maxsize=8)
def _format_atoms(access_log_format: str) -> tuple[str, ...] | None:
    """The atoms a format names, or None when one of them is not built here."""
    names = tuple(dict.fromkeys(_ATOM.findall(access_log_format)))
    for name in names:
        if name not in _SIMPLE and not re.fullmatch(r"\{[^}]+\}[ioe]", name):
            return None
    return names


def _header(headers: Any, name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return str(value)
    return None


def _atom(name: str, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> Any:
    """One of gunicorn's atoms, as `Logger.atoms` computes it."""
    if name[0] == "{":
        key, kind = name[1:-2].lower(), name[-1]
        if kind == "o":
            return _header(resp.headers, key)
        if kind == "i":
            return _header(getattr(req, "headers", ()), key)
        return next((v for k, v in environ.items() if k.lower() == key), None)
    if name == "h":
        return environ.get("REMOTE_ADDR", "-")
    if name == "s":
        status = resp.status
        return status.split(None, 1)[0] if isinstance(status, str) else status
    if name in "mUqH":
        variable = {"m": "REQUEST_METHOD", "U": "PATH_INFO", "q": "QUERY_STRING", "H": "SERVER_PROTOCOL"}
        return environ.get(variable[name])
    if name == "B":
        return getattr(resp, "sent", None)
    if name == "b":
        return str(resp.sent) if getattr(resp, "sent", None) is not None else "-"
    if name == "M":
        return (request_time.seconds * 1000) + int(request_time.microseconds / 1000)
    if name == "D":
        return (request_time.seconds * 1000000) + request_time.microseconds
    if name == "T":
        return request_time.seconds
    if name == "L":
        return f"{request_time.seconds}.{request_time.microseconds:06d}"
    if name == "a":
        return environ.get("HTTP_USER_AGENT", "-")
    if name == "f":
        return environ.get("HTTP_REFERER", "-")
    if name == "l":
        return "-"
    # "r"
    return f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}"


class _Atoms(dict[str, Any]):
    """gunicorn's `SafeAtoms` for the atoms built here: quotes escaped, an absent one is "-"."""

    def __missing__(self, key: str) -> str:
        return "-"


def _atoms(names: tuple[str, ...], resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> _Atoms:
    atoms = _Atoms()
    for name in names:
        value = _atom(name, resp, req, environ, request_time)
        if value is None and name[0] == "{":
            continue  # SafeAtoms answers "-" for a header or variable that is not there
        atoms[name] = value.replace('"', '\\"') if isinstance(value, str) else value
    return atoms


class LineWriter(logging.StreamHandler):  # type: ignore[type-arg]
    """Each record as one `write(2)` of a whole line to the stream's file descriptor, with no lock held."""

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        # Handler.handle takes the handler's lock around emit(); one write of a whole line needs none.
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = (self.format(record) + self.terminator).encode("utf-8", "backslashreplace")
            fd = self.stream.fileno()
            while data:
                data = data[os.write(fd, data) :]
        except Exception:
            self.handleError(record)


class ServiceLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for index, handler in enumerate(self.access_log.handlers):
            if getattr(handler, "_gunicorn", False) and type(handler) is logging.StreamHandler:
                writer = LineWriter(handler.stream)
                writer.setFormatter(handler.formatter)
                writer._gunicorn = True  # type: ignore[attr-defined]  # gunicorn's mark: dropped on a reload
                self.access_log.handlers[index] = writer

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        if os.environ.get("LOG_FORMAT", "plain").lower() != "json":
            names = _format_atoms(self.cfg.access_log_format)
            if names is None:
                super().access(resp, req, environ, request_time)
                return
            try:
                self.access_log.info(
                    self.cfg.access_log_format, _atoms(names, resp, req, environ, request_time)
                )
            except Exception:
                self.exception("access log line not written")
            return
        atoms = _atoms(("h", "m", "U", "s", "B", "a", "{x-request-id}o"), resp, req, environ, request_time)
        duration_ms = round(request_time.total_seconds() * 1000, 3)
        line = {
            "time": datetime.now(tz=UTC).isoformat(timespec="milliseconds"),
            "level": "INFO",
            "logger": "gunicorn.access",
            "message": f"{atoms['m']} {atoms['U']} {atoms['s']}",
            "request_id": atoms["{x-request-id}o"],
            "method": atoms["m"],
            "path": atoms["U"],
            "status": resp.status_code,
            "bytes": atoms["B"],
            "duration_ms": duration_ms,
            "remote_addr": atoms["h"],
            "user_agent": atoms["a"],
        }
        try:
            self.access_log.info(json.dumps(line))
        except Exception:
            self.exception("access log line not written")
