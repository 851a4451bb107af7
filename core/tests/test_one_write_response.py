"""`OneWriteResponse` (core/gunicorn_worker.py) puts on the wire the bytes gunicorn's own response does,
in one `sendall` for a response of one piece."""

from __future__ import annotations

from typing import Any

import pytest
from gunicorn import util
from gunicorn.config import Config
from gunicorn.http.wsgi import Response

from core.gunicorn_worker import OneWriteResponse


class Request:
    version = (1, 1)

    def __init__(self, method: str) -> None:
        self.method = method

    def should_close(self) -> bool:
        return False


class Socket:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))


def answer(
    response_class: type[Response], method: str, status: str, headers: list[Any], body: list[bytes]
) -> Socket:
    sock = Socket()
    response = response_class(Request(method), sock, Config())
    response.start_response(status, headers)
    for piece in body:
        response.write(piece)
    response.close()
    return sock


CASES = {
    "json": (
        "GET",
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", "11")],
        [b'{"id": "1"}'],
    ),
    "empty": ("GET", "200 OK", [("Content-Length", "0")], [b""]),
    "head": ("HEAD", "200 OK", [("Content-Length", "11")], [b'{"id": "1"}']),
    "no content": ("DELETE", "204 No Content", [], [b""]),
    "streamed": ("GET", "200 OK", [("Content-Type", "text/csv")], [b"a,b\r\n", b"1,2\r\n", b""]),
    "in pieces": ("GET", "200 OK", [("Content-Length", "6")], [b"abc", b"def"]),
    "longer than its length": ("GET", "200 OK", [("Content-Length", "3")], [b"abcdef"]),
    "latin-1 header": ("GET", "200 OK", [("Content-Length", "2"), ("X-Name", "Zoë")], [b"ok"]),
}


@pytest.mark.parametrize("case", CASES)
def test_the_bytes_on_the_wire_are_gunicorns(case, monkeypatch):
    monkeypatch.setattr(util, "http_date", lambda *args: "Mon, 07 Dec 2026 10:00:00 GMT")
    ours, gunicorns = answer(OneWriteResponse, *CASES[case]), answer(Response, *CASES[case])

    assert b"".join(ours.writes) == b"".join(gunicorns.writes)


def test_a_response_of_one_piece_is_one_write():
    ours, gunicorns = answer(OneWriteResponse, *CASES["json"]), answer(Response, *CASES["json"])

    assert len(ours.writes) == 1
    assert len(gunicorns.writes) == 2  # what it saves: the headers' own write


def test_a_streamed_response_is_written_as_it_comes():
    ours = answer(OneWriteResponse, *CASES["streamed"])

    assert len(ours.writes) > 2
    assert ours.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Transfer-Encoding: chunked" in ours.writes[0]
