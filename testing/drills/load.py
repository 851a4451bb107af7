"""Background load for the drills: threads sending requests until told to stop, counting what came back."""

from __future__ import annotations

import math
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from testing.stack import Reply, Service


@dataclass
class Load:
    """`threads` threads, each calling `step(service, n)` in a loop; statuses counted per path.

    `pause`: seconds each thread rests after a request (0: back to back). A paced load leaves the
    machine room, so that a latency measured under it is the service's, not the queue's.
    `timings`: (path, start on `time.monotonic()`, seconds) of every request that was answered.
    """

    service: Service
    step: Callable[[Service, int], tuple[str, Reply]]
    threads: int = 4
    pause: float = 0.0
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    timings: list[tuple[str, float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)
        ]

    def _run(self, index: int) -> None:
        n = index
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                path, reply = self.step(self.service, n)
            except OSError as exc:  # a refused or reset connection is a failure the drill must see
                with self._lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                self._stop.wait(self.pause)
                continue
            seconds = time.monotonic() - started
            with self._lock:
                self.timings.append((path, started, seconds))
                self.statuses[(path, reply.status)] += 1
                if reply.status >= 500 and reply.status != 503:
                    self.errors.append(f"{path} {reply.status} {reply.body[:200]!r}")
            n += self.threads
            if self.pause:
                self._stop.wait(self.pause)

    def __enter__(self) -> Load:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)

    def count(self, predicate: Callable[[int], bool]) -> int:
        return sum(n for (_, status), n in self.statuses.items() if predicate(status))

    def latencies(self, path: str, since: float, until: float) -> list[float]:
        """Seconds taken by the requests to `path` that started between `since` and `until`."""
        with self._lock:
            return [seconds for p, started, seconds in self.timings if p == path and since <= started < until]


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (`fraction` 0.99: p99); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def upload(service: Service, path: str, token: str, name: str, data: bytes, *, timeout: float = 30) -> Reply:
    """POST `data` as the multipart field `file` named `name` (a resume, a requirements)."""
    boundary = f"drill{random.getrandbits(64):016x}"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(service.base + path, data=body, method="POST")  # noqa: S310  (loopback)
    request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  (loopback)
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, dict(error.headers), error.read())
