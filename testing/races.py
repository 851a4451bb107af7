"""A race: calls released together in threads, for the tests of what must hold when requests,
workers or relays arrive at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def run_at_once(calls: list[Callable[[], Any]], *, timeout: float = 30) -> list[Any]:
    """Run the calls in threads released together; their results (or exceptions), in order.

    Each thread closes its own database connection when done (Django opens one per thread).
    `timeout`: how long a thread may take before the race counts as hung.
    """
    from django.db import connection

    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def worker(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as exc:  # reported by the test, not lost in the thread
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    return results
