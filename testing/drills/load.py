"""Background load for the drills: threads sending requests until told to stop, counting what came back."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from testing.stack import Reply, Service


@dataclass
class Load:
    """`threads` threads, each calling `step(service, n)` in a loop; statuses counted per path."""

    service: Service
    step: Callable[[Service, int], tuple[str, Reply]]
    threads: int = 4
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)
        ]

    def _run(self, index: int) -> None:
        n = index
        while not self._stop.is_set():
            try:
                path, reply = self.step(self.service, n)
            except OSError as exc:  # a refused or reset connection is a failure the drill must see
                with self._lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with self._lock:
                self.statuses[(path, reply.status)] += 1
                if reply.status >= 500 and reply.status != 503:
                    self.errors.append(f"{path} {reply.status} {reply.body[:200]!r}")
            n += self.threads

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
