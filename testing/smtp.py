"""A small SMTP sink on loopback that can hold a delivery open, to kill a worker in the middle of one.

Written by hand: the standard library's `smtpd` is deprecated (gone in 3.12) and `aiosmtpd` is not a
dependency; the drills need only the plain-text dialogue, and a hook to stall one message before it is
accepted (so the sender has not been told "250 OK" when it dies).
"""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message

from .stack import free_port


@dataclass
class SmtpSink:
    """Accepted messages land in `messages`; the first one whose text has `hold_marker` is held."""

    hold_marker: str = ""
    port: int = field(default_factory=free_port)
    messages: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.holding = threading.Event()  # set while a delivery is held open
        self.release = threading.Event()  # set to let a held delivery end (without accepting it)
        self._held_once = False
        self._lock = threading.Lock()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")
                self.wfile.flush()

            def handle(self) -> None:
                self.reply("220 drill ESMTP")
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    verb = line.decode(errors="replace").strip().split(" ")[0].upper()
                    if verb in {"EHLO", "HELO"}:
                        self.reply("250 drill")
                    elif verb in {"MAIL", "RCPT", "RSET", "NOOP"}:
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 go ahead")
                        body = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                            body += chunk
                        if sink.should_hold(body):
                            sink.holding.set()
                            sink.release.wait(120)
                            return  # the connection drops: the message was never accepted
                        sink.accept(body)
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True

    def should_hold(self, body: bytes) -> bool:
        with self._lock:
            if self.hold_marker and not self._held_once and self.hold_marker.encode() in body:
                self._held_once = True
                return True
            return False

    def accept(self, body: bytes) -> None:
        with self._lock:
            self.messages.append(message_from_bytes(body))

    def count(self, *, to: str, subject: str) -> int:
        with self._lock:
            return sum(1 for m in self.messages if m["To"] == to and m["Subject"] == subject)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> SmtpSink:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
