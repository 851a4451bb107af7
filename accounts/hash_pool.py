"""Password hashing for batches, on every core: the pool `bulk_create_users --workers N` uses."""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from multiprocessing.pool import Pool
from types import TracebackType

import django
from django.contrib.auth.hashers import make_password


def _pool_context() -> multiprocessing.context.BaseContext:
    """`fork` on Linux: workers start in milliseconds and inherit the configured hashers.

    They only hash (never touch the inherited database or cache connections)
    and leave with `os._exit`, so nothing of the parent's is closed behind its
    back. Elsewhere `spawn`, with `django.setup` as the initializer.
    """
    if sys.platform == "linux":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class PasswordHashing(AbstractContextManager["PasswordHashing"]):
    """`make_password` for batches of passwords, here or in `workers` processes.

    bcrypt costs ~200 ms a password; a pool of processes spreads a batch
    over every core. (bcrypt 5 releases the GIL, so threads would as well:
    two hashes on two threads took 0.21 s against 0.205 s for one, on a
    quiet machine; BULK.md's 1.2x was taken on a busy one.) The pool starts
    on the first batch that has plaintext passwords: an import of hashes
    never pays for it.
    `submit` returns at once; the hashes are collected by calling its result,
    so the next batch is hashed while the previous one is inserted.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool: Pool | None = None

    def _get_pool(self) -> Pool:
        if self._pool is None:
            context = _pool_context()
            if context.get_start_method() == "fork":
                self._pool = context.Pool(self.workers)
            else:
                self._pool = context.Pool(self.workers, initializer=django.setup)
        return self._pool

    def submit(self, passwords: list[str]) -> Callable[[], list[str]]:
        if not passwords:
            return list
        if self.workers == 1:
            return lambda: [make_password(password) for password in passwords]
        pending = self._get_pool().map_async(
            # Small chunks: a worker slowed by other load leaves little of the batch to wait for.
            make_password,
            passwords,
            chunksize=max(1, len(passwords) // (self.workers * 16)),
        )
        return lambda: pending.get()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            if exc_type is None:
                self._pool.close()
            else:
                self._pool.terminate()
            self._pool.join()
            self._pool = None
