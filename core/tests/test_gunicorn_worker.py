"""The shipped gunicorn worker (core/gunicorn_worker.py), run as gunicorn runs it, on a bare WSGI app.

Each rule of the module's docstring, from outside: keep-alive, a long request holding no other
request, idle and silent connections holding no thread and closed after `keepalive`, pipelining,
an unread body, `worker_connections`, `max_requests`, the graceful stop, and many clients at once
each getting their own answer. The service's own tests (test_gunicorn, test_workers, the drills)
run the same worker under Django.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testing.processes import stop
from testing.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
WORKER = "core.gunicorn_worker.SharedPollWorker"

pytestmark = pytest.mark.slow


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def connect(self) -> Client:
        return Client(socket.create_connection(("127.0.0.1", self.port), timeout=10))


@contextmanager
def serving(
    tmp_path: Path, *options: str, threads: int = 2, workers: int = 1, max_files: int | None = None
) -> Iterator[Server]:
    port = free_port()
    log = tmp_path / f"gunicorn-{port}.log"
    command = [
        sys.executable, "-m", "gunicorn", "core.tests.gunicorn_probe_app:app", "-c", "/dev/null",
        "--worker-class", WORKER, "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--threads", str(threads), "--keep-alive", "2", "--graceful-timeout", "10", *options,
    ]  # fmt: skip

    def limit_files() -> None:
        if max_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files))

    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=out, start_new_session=True, preexec_fn=limit_files
        )
    server = Server(port, process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with server.connect() as client:
                    assert client.get("/up")["path"] == "/up"
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log.read_text()) from None
                time.sleep(0.1)
        yield server
    finally:
        stop(process, timeout=20)


class Client:
    """HTTP/1.1 over one socket, by hand: what goes on the wire is the test's to choose."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    @staticmethod
    def request(path: str, *, method: str = "GET", body: bytes = b"", close: bool = False) -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {len(body)}\r\n"
        if close:
            head += "Connection: close\r\n"
        return head.encode() + b"\r\n" + body

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buffer += chunk

    def answer(self) -> dict[str, Any]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        assert status == b"HTTP/1.1 200 OK", head
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")[1:]
            if line.lower().startswith(b"content-length:")
        )
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return json.loads(body)

    def get(self, path: str, **kwargs: Any) -> dict[str, Any]:
        self.send(self.request(path, **kwargs))
        return self.answer()

    def closed_by_server(self, within: float) -> bool:
        self.sock.settimeout(within)
        try:
            return self.sock.recv(1) == b""
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True


def test_keep_alive_serves_many_requests_on_one_connection(tmp_path):
    with serving(tmp_path) as server, server.connect() as client:
        pids = {client.get(f"/read?n={n}")["pid"] for n in range(50)}
        assert [client.get(f"/read?n={n}")["query"] for n in range(3)] == ["n=0", "n=1", "n=2"]
        assert len(pids) == 1
        assert not client.closed_by_server(within=0.3)


def test_a_long_request_holds_no_other_connection(tmp_path):
    """One of two threads busy (a login's hash), reads on other connections go to the other."""
    with serving(tmp_path, threads=2) as server, server.connect() as slow, server.connect() as fast:
        started = time.monotonic()
        slow.send(slow.request("/sleep?s=2"))
        time.sleep(0.1)
        for n in range(20):
            assert fast.get(f"/read?n={n}")["query"] == f"n={n}"
        assert time.monotonic() - started < 1.5  # the reads did not wait for the sleep
        assert slow.answer()["path"] == "/sleep"


def test_idle_and_silent_connections_hold_no_thread(tmp_path):
    with serving(tmp_path, threads=2) as server:
        silent = [server.connect() for _ in range(20)]  # connected, never send
        idle = [server.connect() for _ in range(5)]
        for client in idle:
            client.get("/first")  # answered, then kept alive and idle
        started = time.monotonic()
        with server.connect() as client:
            assert client.get("/now")["path"] == "/now"
        assert time.monotonic() - started < 1.0
        for client in silent + idle:
            client.sock.close()


def test_idle_and_silent_connections_are_closed_after_keepalive(tmp_path):
    with (
        serving(tmp_path, "--keep-alive", "1") as server,
        server.connect() as idle,
        server.connect() as silent,
    ):
        idle.get("/once")
        assert idle.closed_by_server(within=4)
        assert silent.closed_by_server(within=4)


def test_pipelined_requests_are_answered_in_order(tmp_path):
    with serving(tmp_path) as server, server.connect() as client:
        client.send(b"".join(client.request(f"/p?n={n}") for n in range(5)))
        assert [client.answer()["query"] for _ in range(5)] == [f"n={n}" for n in range(5)]


def test_an_unread_body_is_drained_before_the_next_request(tmp_path):
    with serving(tmp_path) as server, server.connect() as client:
        client.send(client.request("/ignore-body", method="POST", body=b"x" * 10_000))
        assert client.answer()["path"] == "/ignore-body"
        assert client.get("/after")["path"] == "/after"


def test_connection_close_is_honoured(tmp_path):
    with serving(tmp_path) as server, server.connect() as client:
        assert client.get("/bye", close=True)["path"] == "/bye"
        assert client.closed_by_server(within=2)


def test_worker_connections_bound_the_open_connections(tmp_path):
    """At the bound the worker stops accepting; a connection closing lets the next one in."""
    with serving(tmp_path, "--worker-connections", "3", threads=1) as server:
        silent = [server.connect() for _ in range(3)]
        time.sleep(0.3)  # accepted: the worker is at its bound
        with server.connect() as waiting:
            waiting.send(waiting.request("/waiting"))
            waiting.sock.settimeout(1.0)
            with pytest.raises(TimeoutError):
                waiting.answer()
            silent[0].sock.close()
            waiting.sock.settimeout(5)
            assert waiting.answer()["path"] == "/waiting"
        for client in silent[1:]:
            client.sock.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_out_of_descriptors_the_worker_pauses_instead_of_spinning(tmp_path):
    """`accept` failing with EMFILE: the worker stops accepting for a while, and serves again after."""
    with serving(tmp_path, max_files=48) as server:
        worker = int(
            Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()[0]
        )
        crowd = []
        for _ in range(80):  # more than the worker has descriptors for
            with suppress(OSError):
                crowd.append(socket.create_connection(("127.0.0.1", server.port), timeout=2))
        time.sleep(1.5)
        before = _cpu_seconds(worker)
        time.sleep(2)
        assert _cpu_seconds(worker) - before < 0.5  # paused: a spinning accept would take a core
        assert "Not accepting connections for now" in server.log.read_text()
        for sock in crowd:
            sock.close()
        time.sleep(1.5)  # the worker closes what it had accepted, and arms its listener again
        with server.connect() as client:
            client.sock.settimeout(10)
            assert client.get("/again")["path"] == "/again"


def test_max_requests_restarts_the_worker_without_losing_a_request(tmp_path):
    with serving(tmp_path, "--max-requests", "5") as server:
        pids = set()
        for n in range(15):
            for _attempt in range(50):  # between the old worker and the new one: refused, then up
                try:
                    with server.connect() as client:
                        pids.add(client.get(f"/n?{n}")["pid"])
                    break
                except ConnectionError:
                    time.sleep(0.1)
            else:
                pytest.fail(f"request {n} was never answered")
        assert len(pids) >= 2


def test_a_thread_that_dies_restarts_the_worker(tmp_path):
    """A worker does not serve on with fewer threads: it stops, and the arbiter starts a new one."""
    with serving(tmp_path) as server:
        with server.connect() as client:
            first = client.get("/who")["pid"]
            client.send(client.request("/exit"))
            assert client.closed_by_server(within=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with suppress(OSError), server.connect() as client:
                client.sock.settimeout(2)
                if client.get("/who")["pid"] != first:
                    return
            time.sleep(0.2)
        pytest.fail("the worker whose thread died still answers")


def test_sigterm_finishes_the_request_in_flight_then_stops(tmp_path):
    with serving(tmp_path) as server, server.connect() as client:
        client.send(client.request("/sleep?s=1"))
        time.sleep(0.2)
        server.process.send_signal(signal.SIGTERM)
        assert client.answer()["path"] == "/sleep"
        assert server.process.wait(timeout=15) == 0
        with pytest.raises(ConnectionRefusedError):
            server.connect()


def test_many_clients_at_once_each_get_their_own_answer(tmp_path):
    """16 connections on 2 workers x 4 threads, 150 requests each, some closing as they go."""
    failures: list[str] = []
    with serving(tmp_path, threads=4, workers=2) as server:

        def client_run(c: int) -> None:
            client = server.connect()
            try:
                for n in range(150):
                    close = n % 50 == 49
                    query = f"c={c}&n={n}"
                    if client.get(f"/x?{query}", close=close)["query"] != query:
                        failures.append(query)
                    if close:
                        client.sock.close()
                        client = server.connect()
            except Exception as error:  # reported below, with the client's number
                failures.append(f"client {c}: {error!r}")
            finally:
                client.sock.close()

        threads = [threading.Thread(target=client_run, args=(c,)) for c in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert "Traceback" not in server.log.read_text()
