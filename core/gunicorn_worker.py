"""gunicorn's threaded worker without the hand-off: every pool thread waits on the worker's epoll itself.

Why by hand: gunicorn's `gthread` worker (and no other maintained worker) serves a keep-alive
request in four steps across two threads. Its main thread wakes from `epoll`, unregisters the
socket and submits it to a `ThreadPoolExecutor`; a pool thread wakes, answers, and defers a
callback through a pipe; the main thread wakes again, and registers the socket again. That is
three to four voluntary context switches and about ten system calls a request, and under load the
threads convoy on the executor's and the GIL's locks (issue 26: 3.8 switches a request against the
sync worker's 0.04, most of the gap between the shipped warm read and a bare Django view).

Here the socket is registered once, `EPOLLONESHOT`, in one epoll per worker on which every pool
thread waits (`epoll_wait` wakes one waiter an event). The thread that gets the event answers the
request in place and re-arms the socket: one wake-up and one `epoll_ctl` a request. What gthread
was chosen for is kept: a thread busy hashing a password owns no socket, so the reads go to the
other threads (benchmarks/load_mix.py).

Everything about a request itself is gthread's own code (`TConn`, `handle`, `handle_request`,
HTTP/2, the keep-alive drain); only the dispatch is replaced. The rules of the dispatch:

- **Ownership.** An idle connection is in `keepalived_conns`; a thread owns a connection from the
  moment it pops it from there (under the lock) until it puts it back or closes it. An event for
  a connection that is not there (closed by the reaper meanwhile) is dropped.
- **Keep-alive.** The main thread closes idle connections past their deadline (`keepalive`
  seconds), in deadline order, once a second; a stopping worker caps the deadlines at
  `STOP_KEEPALIVE_LINGER`, as gthread does.
- **Slow clients.** A new connection is served only once readable, so a client that connects and
  sends nothing holds no thread (gthread defers it the same way) and is closed after `keepalive`.
- **Limits.** At most `worker_connections` open connections (the listener is disarmed at the
  limit, and for a second when `accept` fails for want of descriptors or memory); `max_requests`, `timeout` (the main thread's heartbeat) and the graceful stop as gthread.
- **One write a response.** gunicorn sends the status line and headers, then the body, in two
  `sendall`s: two system calls and two TCP segments for a response of one piece (every JSON
  answer). `OneWriteResponse` sends them together; the bytes on the wire are the same.
- **A thread that dies** (a bug, not a request's error: those are answered by `handle`) stops the
  worker, and the arbiter starts a new one, rather than serve on with fewer threads.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import sys
import threading
import time
from contextlib import suppress
from datetime import datetime
from typing import Any

from gunicorn import util
from gunicorn.http import wsgi
from gunicorn.workers import base
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

_ARMED = select.EPOLLIN | select.EPOLLONESHOT
_TICK = 1.0  # seconds between the main thread's heartbeats and keep-alive sweeps


class OneWriteResponse(wsgi.Response):  # type: ignore[misc]
    """gunicorn's response, with the headers and the first piece of the body in one `sendall`.

    Only the plain case: a response that streams, is chunked, has no body (HEAD, 204, 304) or is
    cut to its Content-Length goes through gunicorn's own `write`, unchanged.
    """

    def write(self, arg: bytes) -> None:
        if (
            self.headers_sent  # type: ignore[has-type]  # gunicorn is not typed
            or self.chunked
            or self._omits_body
            or not isinstance(arg, bytes)
            or (self.response_length is not None and len(arg) > self.response_length)
        ):
            super().write(arg)
            return
        # `send_headers`' lines, as gunicorn 27 builds them
        lines = self.default_headers()
        lines.extend(["%s: %s\r\n" % (k, v) for k, v in self.headers])  # noqa: UP031
        head = util.to_bytestring("%s\r\n" % "".join(lines), "latin-1")  # noqa: UP031
        self.sock.sendall(head + arg)
        self.headers_sent = True
        self.sent += len(arg)


class SharedPollWorker(ThreadWorker):
    """`gthread` with the pool threads polling one epoll (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keepalived_conns: dict[int, TConn] = {}  # type: ignore[assignment]  # idle, by fd, in deadline order
        self._lock = threading.Lock()
        self._epoll: select.epoll | None = None
        self._listeners: dict[int, socket.socket] = {}
        self._listening = False
        self._serving = True  # the threads' loop; `alive` only stops accepting
        self._threads: list[threading.Thread] = []

    def init_process(self) -> None:
        self._epoll = select.epoll()
        base.Worker.init_process(self)  # gthread's own would build its executor and poller: not used

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.alive = False  # the main thread wakes: gunicorn's signal wake-up pipe

    def handle_quit(self, sig: int, frame: Any) -> None:
        base.Worker.handle_quit(self, sig, frame)

    # The main thread: heartbeat, keep-alive sweep, stop.

    def run(self) -> None:
        assert self._epoll is not None
        self._listeners = {s.fileno(): s for s in self.sockets}
        for listener in self.sockets:
            listener.setblocking(False)
        with self._lock:
            self._arm_listeners(True)
        for n in range(self.cfg.threads):
            thread = threading.Thread(target=self._serve, name=f"gunicorn-poll-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

        while self.alive:
            self.notify()
            self._wait(_TICK)
            if not self.is_parent_alive() or not all(t.is_alive() for t in self._threads):
                self.alive = False
            self._reap(time.monotonic())
            with self._lock:
                if self.nr_conns < self.worker_connections:
                    self._arm_listeners(True)  # after a pause for want of descriptors

        with self._lock:
            self._arm_listeners(False)
            linger = time.monotonic() + STOP_KEEPALIVE_LINGER
            for conn in self.keepalived_conns.values():
                conn.timeout = min(conn.timeout, linger)
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while self.nr_conns > 0 and time.monotonic() < deadline:
            self.notify()
            self._wait(min(0.1, max(deadline - time.monotonic(), 0.0)))
            self._reap(time.monotonic())
        self._serving = False
        self._reap(float("inf"))
        for thread in self._threads:
            thread.join(_TICK + 0.5)
        self._epoll.close()
        for listener in self.sockets:
            listener.close()

    def _wait(self, timeout: float) -> None:
        """Sleep up to `timeout`, woken early by a signal (gunicorn writes them to `PIPE`)."""
        try:
            readable, _, _ = select.select([self.PIPE[0]], [], [], timeout)
            if readable:
                os.read(self.PIPE[0], 64)
        except InterruptedError:
            pass

    def _reap(self, now: float) -> None:
        """Close the idle connections whose deadline has passed (the dict is in deadline order)."""
        expired: list[TConn] = []
        with self._lock:
            for conn in self.keepalived_conns.values():
                if conn.timeout > now:
                    break
                expired.append(conn)
            for conn in expired:
                del self.keepalived_conns[conn.sock.fileno()]
        for conn in expired:
            self._close(conn)

    def _arm_listeners(self, on: bool) -> None:
        """Start or stop accepting; the caller holds the lock."""
        assert self._epoll is not None
        if on == self._listening or (on and not self.alive):  # already so, or stopping
            return
        for fd in self._listeners:
            if on:
                self._epoll.register(fd, _ARMED)
            else:
                self._epoll.unregister(fd)
        self._listening = on

    # The pool threads.

    def _serve(self) -> None:
        assert self._epoll is not None
        poll = self._epoll.poll
        while self._serving:
            try:
                events = poll(_TICK, 1)
            except InterruptedError:
                continue
            except OSError:  # the epoll closed under a stopping worker
                return
            for fd, _mask in events:
                if fd in self._listeners:
                    self._accept(self._listeners[fd])
                    continue
                with self._lock:
                    conn = self.keepalived_conns.pop(fd, None)
                if conn is None:  # the reaper closed it meanwhile
                    continue
                try:
                    self._answer(conn)
                except BaseException:  # the thread is dying: leave no connection open behind it
                    self._close(conn)
                    raise

    def _accept(self, listener: socket.socket) -> None:
        """One connection a wake-up, as gthread: a worker that took every connection waiting would
        leave the other workers idle (16 at once all went to one worker, which then had one core)."""
        conn: TConn | None = None
        refused: OSError | None = None
        try:
            client, address = listener.accept()
            conn = TConn(self.cfg, client, address, listener.getsockname())
        except OSError as error:  # EAGAIN: another worker took it
            refused = error
        with self._lock:
            if conn is not None:
                self.nr_conns += 1
                conn.set_timeout()  # a client that sends nothing is closed after `keepalive`
                self._park(conn)
            if not self._listening:
                return  # the worker stopped accepting meanwhile
            if refused is not None and refused.errno not in (errno.EAGAIN, errno.ECONNABORTED):
                # Out of descriptors or memory: pause, not spin. The main thread's tick, or the
                # next connection to close, arms the listener again.
                self.log.error("Not accepting connections for now: %s", refused)
                self._arm_listeners(False)
            elif self.alive and self.nr_conns < self.worker_connections:
                self._epoll.modify(listener.fileno(), _ARMED)  # type: ignore[union-attr]
            else:
                self._arm_listeners(False)

    def _answer(self, conn: TConn) -> None:
        """Serve the requests the connection has for us, then park it again or close it."""
        if not conn.initialized and not self._has_data(conn.sock):
            with self._lock:
                self._park(conn)  # an event for an earlier socket of the same number
            return
        conn.data_ready = True
        try:
            keep = self.handle(conn)
            while keep is True and conn.parser.unreader.buf.getvalue():
                keep = self.handle(conn)  # a body drain read ahead into the next request
        except Exception:  # handle() answers a request's errors; this is a bug of ours
            self.log.exception("Error serving a connection")
            keep = False
        if keep is True and self._serving:
            conn.set_timeout()
            if not self.alive:
                conn.timeout = min(conn.timeout, time.monotonic() + STOP_KEEPALIVE_LINGER)
            with self._lock:
                self._park(conn)
        else:
            self._close(conn, graceful=True)

    def _park(self, conn: TConn) -> None:
        """Idle, waiting for its next request; the caller holds the lock."""
        fd = conn.sock.fileno()
        self.keepalived_conns[fd] = conn
        try:
            self._epoll.modify(fd, _ARMED)  # type: ignore[union-attr]
        except FileNotFoundError:
            self._epoll.register(fd, _ARMED)  # type: ignore[union-attr]

    @staticmethod
    def _has_data(sock: socket.socket) -> bool:
        try:
            sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)  # b"" (the client closed) counts too
        except BlockingIOError:
            return False
        except OSError:
            pass  # handle() meets the error and closes
        return True

    def _close(self, conn: TConn, graceful: bool = False) -> None:
        with suppress(OSError):
            conn.close(graceful=graceful)
        with self._lock:
            self.nr_conns -= 1
            if self.alive and not self._listening and self.nr_conns < self.worker_connections:
                self._arm_listeners(True)

    # A request: gthread's `handle_request` (gunicorn 27.0.1), with `OneWriteResponse`.

    def handle_request(self, req: Any, conn: TConn) -> bool:
        environ: dict[str, Any] = {}
        resp = None
        try:
            self.cfg.pre_request(self, req)
            request_start = datetime.now()
            resp, environ = wsgi.create(
                req, conn.sock, conn.client, conn.server, self.cfg, response_class=OneWriteResponse
            )
            environ["wsgi.multithread"] = True
            self.nr += 1
            if self.nr >= self.max_requests:
                if self.alive:
                    self.log.info("Autorestarting worker after current request.")
                    self.alive = False
                resp.force_close()
            if not self.alive or not self.cfg.keepalive or len(self.keepalived_conns) >= self.max_keepalived:
                resp.force_close()

            respiter = self.wsgi(environ, resp.start_response)
            try:
                if isinstance(respiter, environ["wsgi.file_wrapper"]):
                    resp.write_file(respiter)
                else:
                    for item in respiter:
                        resp.write(item)
                resp.close()
            finally:
                self.log.access(resp, req, environ, datetime.now() - request_start)
                if hasattr(respiter, "close"):
                    respiter.close()

            if resp.should_close():
                self.log.debug("Closing connection.")
                return False
        except OSError:
            util.reraise(*sys.exc_info())  # handle() answers it
        except (Exception, SystemExit):
            if resp and resp.headers_sent:
                # A timeout's abort is SystemExit: with the response begun, a 500 would corrupt it.
                self.log.exception("Error handling request")
                util.close_graceful(conn.sock)
                raise StopIteration() from None
            raise
        finally:
            try:
                self.cfg.post_request(self, req, environ, resp)
            except Exception:
                self.log.exception("Exception in post_request hook")
        return True
