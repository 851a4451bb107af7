"""The access log (issue 26): `core.logging_gunicorn` builds only the atoms its format names and writes
each line without a lock; the lines must stay exactly gunicorn's own."""

from __future__ import annotations

import datetime
import json
import logging
import os
import runpy
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from core.logging_gunicorn import LineWriter, ServiceLogger

PROJECT = Path(__file__).resolve().parents[2]


def _shipped_format() -> str:
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/tmp/user-service-access-log-test")  # noqa: S108
    return str(runpy.run_path(str(PROJECT / "gunicorn.conf.py"))["access_log_format"])


def _config(access_log_format: str) -> Config:
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", access_log_format)
    return cfg


def _line(logger_class: type[Logger], access_log_format: str, **request: Any) -> str:
    """What `logger_class` writes for one request."""
    logger = logger_class(_config(access_log_format))
    written: list[str] = []
    logger.access_log.info = lambda msg, *args: written.append(msg % args[0] if args else msg)  # type: ignore[method-assign]
    logger.access(*_request(**request))
    assert len(written) == 1
    return written[0]


def _request(
    *,
    agent: str | None = "curl/8.0",
    request_id: str | None = "abc-123",
    path: str = "/api/v1/users/me",
    status: str = "200 OK",
    sent: int | None = 512,
) -> tuple[Any, Any, dict[str, Any], datetime.timedelta]:
    headers = [("Content-Type", "application/json")]
    if request_id is not None:
        headers.append(("X-Request-ID", request_id))
    resp = SimpleNamespace(status=status, status_code=int(status.split()[0]), headers=headers, sent=sent)
    req = SimpleNamespace(headers=[("HOST", "127.0.0.1"), ("USER-AGENT", agent or "")])
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": path + "?code=secret",
        "PATH_INFO": path,
        "QUERY_STRING": "code=secret",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.1.2.3",
    }
    if agent is not None:
        environ["HTTP_USER_AGENT"] = agent
    return resp, req, environ, datetime.timedelta(seconds=1, microseconds=2345)


@pytest.mark.parametrize(
    "request_args",
    [
        {},
        {"agent": 'evil "agent" \\ with quotes'},
        {"agent": None},
        {"request_id": None},
        {"status": "404 Not Found", "sent": None},
        {"path": '/api/v1/"quoted"'},
    ],
)
@pytest.mark.parametrize(
    "access_log_format",
    [
        "shipped",
        '%(h)s %(l)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s %(T)s %(L)s %({content-type}o)s %({host}i)s',
    ],
)
def test_the_lean_line_is_gunicorns_own(access_log_format, request_args):
    fmt = _shipped_format() if access_log_format == "shipped" else access_log_format
    if "%(t)s" in fmt:  # the time: the same clock for both
        fmt = fmt.replace("%(t)s", "")
    assert _line(ServiceLogger, fmt, **request_args) == _line(Logger, fmt, **request_args)


def test_a_format_with_an_atom_not_built_here_goes_to_gunicorn():
    fmt = "%(p)s %(u)s %(h)s"
    assert _line(ServiceLogger, fmt) == _line(Logger, fmt)


def test_json_lines_keep_their_keys(monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "json")
    line = json.loads(_line(ServiceLogger, _shipped_format(), agent='a "quoted" agent'))
    assert line["logger"] == "gunicorn.access"
    assert line["request_id"] == "abc-123"
    assert line["path"] == "/api/v1/users/me"
    assert line["status"] == 200
    assert line["bytes"] == 512
    assert line["duration_ms"] == 1002.345
    assert line["user_agent"] == 'a \\"quoted\\" agent'
    assert line["message"] == "GET /api/v1/users/me 200"
    missing = json.loads(_line(ServiceLogger, _shipped_format(), request_id=None))
    assert missing["request_id"] == "-"


def test_the_stdout_handler_writes_whole_lines_without_its_lock(tmp_path):
    logger = ServiceLogger(_config(_shipped_format()))
    writers = [h for h in logger.access_log.handlers if isinstance(h, LineWriter)]
    assert len(writers) == 1
    target = tmp_path / "access.log"
    with target.open("w") as stream:
        handler = LineWriter(stream)
        handler.setFormatter(logging.Formatter("%(message)s"))
        assert handler.lock is not None
        handler.lock.acquire()  # held elsewhere: the writes must not wait for it
        try:
            threads = [
                threading.Thread(
                    target=lambda n=n: [
                        handler.handle(logging.makeLogRecord({"msg": f"line {n} {i} " + "x" * 200}))
                        for i in range(200)
                    ]
                )
                for n in range(4)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
        finally:
            handler.lock.release()
    lines = target.read_text().splitlines()
    assert len(lines) == 800
    assert all(line.startswith("line ") and line.endswith("x" * 200) for line in lines)
