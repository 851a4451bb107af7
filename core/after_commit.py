"""Work for after the current transaction commits: Celery tasks, and callbacks run once.

The one place that knows how work leaves a transaction (STYLE: tasks take ids
and are queued after commit, never inside an open transaction):

- `enqueue_after_commit("app.tasks.name", *ids)` queues a task after commit.
  Tasks are named, not imported: an app's `tasks.py` imports its services, so
  a service that imported its tasks back would close an import cycle.
- `on_commit_once(func)` runs `func` after commit, once however often it is
  asked for within the transaction (the outbox relay after many events).
- `tasks_run_in_process()`: no broker, so Celery runs tasks eagerly in this
  process (the embedded default).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any

from celery import Task
from celery import current_app as app
from django.conf import settings
from django.db import transaction


def tasks_run_in_process() -> bool:
    """True in the embedded default: no `CELERY_BROKER_URL`, tasks run eagerly here."""
    return bool(settings.CELERY_TASK_ALWAYS_EAGER)


_discovery_lock = threading.Lock()


def registered_task(name: str) -> Task:
    """The Celery task registered as `name` (`<app>.tasks.<function>`).

    Celery imports the apps' `tasks` modules only when a worker starts; a web
    process or a command loads them on the first miss here, so a task is found
    whichever module happened to be imported first. (Forced autodiscovery, not
    `loader.import_default_modules()`: that also runs Django's system checks.)
    An unknown name raises `celery.exceptions.NotRegistered` (a KeyError).

    The lock: Celery's discovery returns nothing at all to a second thread
    that calls it while a first one is still importing (its `_RACE_PROTECTION`
    flag), so under gthread workers one of the first concurrent requests of a
    fresh process answered 500. The second thread now waits for the first.
    """
    try:
        return app.tasks[name]
    except KeyError:
        pass
    with _discovery_lock:
        try:
            return app.tasks[name]
        except KeyError:
            app.autodiscover_tasks(force=True)  # every installed app's tasks.py
            return app.tasks[name]


def enqueue_after_commit(task: str, *args: Any, once: bool = False, background_only: bool = False) -> None:
    """Queue `task` with `args` (ids and plain values) once the current transaction commits.

    The name is resolved now, so a misspelt one fails at the call, not after
    the commit. `once`: one task per transaction, however many calls with the
    same task and arguments. `background_only`: skip it when tasks run
    in-process, for work that a periodic task does anyway (the outbox relay)
    and that must not run in the request.
    """
    if background_only and tasks_run_in_process():
        return
    registered = registered_task(task)

    def send() -> None:
        registered.delay(*args)

    if once:
        on_commit_once(send, key=("task", task, args))
    else:
        transaction.on_commit(send)


class _Once:
    """The callback `on_commit_once` hands to Django; forgets its key when it runs."""

    __slots__ = ("__weakref__", "func", "key", "registry")

    def __init__(self, func: Callable[[], Any], key: Hashable, registry: weakref.WeakValueDictionary) -> None:
        self.func, self.key, self.registry = func, key, registry

    def __call__(self) -> None:
        if self.registry.get(self.key) is self:
            del self.registry[self.key]
        self.func()


_local = threading.local()  # Django's connections are per thread; so is what is queued on them


def on_commit_once(func: Callable[[], Any], *, key: Hashable | None = None) -> None:
    """Run `func` after the current transaction commits; once per transaction for the same `key` (`func`).

    Django keeps no public list of the callbacks it holds, so the registry
    holds each queued callback by a weak reference: Django drops callbacks
    when their transaction or savepoint rolls back, and after running them,
    and the entry goes with them, so the next transaction queues afresh.
    (CPython frees a dropped callback at once; elsewhere a late collection
    would at worst skip one run, which the periodic relay covers.)
    """
    registry: weakref.WeakValueDictionary[Hashable, _Once] | None = getattr(_local, "registry", None)
    if registry is None:
        registry = _local.registry = weakref.WeakValueDictionary()
    connection = transaction.get_connection()
    full_key = (connection.alias, func if key is None else key)
    if full_key in registry:
        return
    callback = _Once(func, full_key, registry)
    registry[full_key] = callback
    transaction.on_commit(callback)
