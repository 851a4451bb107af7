"""Work queued after commit (`core.after_commit`): once per transaction, by task name, not in a rollback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import NotRegistered
from django.db import transaction

from core.after_commit import enqueue_after_commit, on_commit_once, registered_task
from testing.processes import fresh_python

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def test_a_callback_asked_for_many_times_runs_once_after_the_commit(django_capture_on_commit_callbacks):
    ran: list[str] = []

    def relay() -> None:
        ran.append("relay")

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        for _ in range(3):
            on_commit_once(relay)
        assert ran == []  # nothing before the commit
    assert ran == ["relay"]

    # The next transaction queues it again.
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        on_commit_once(relay)
    assert ran == ["relay", "relay"]


def test_a_rolled_back_savepoint_does_not_swallow_the_next_request(django_capture_on_commit_callbacks):
    """Django drops the callbacks of a savepoint that rolls back; a later call in the transaction queues anew."""
    ran: list[int] = []

    def relay() -> None:
        ran.append(1)

    def queue_then_fail() -> None:
        with transaction.atomic():
            on_commit_once(relay)
            raise RuntimeError

    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError):
            queue_then_fail()
        on_commit_once(relay)
    assert ran == [1]


def test_different_keys_run_each_once(django_capture_on_commit_callbacks):
    ran: list[str] = []
    with django_capture_on_commit_callbacks(execute=True):
        for name in ("a", "b", "a", "b"):
            on_commit_once(lambda name=name: ran.append(name), key=name)
    assert ran == ["a", "b"]


def test_a_task_is_queued_by_name_after_the_commit_with_its_arguments(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    task = registered_task("notifications.tasks.send_notification_emails")
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(task, "delay", lambda *args: sent.append(args))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        enqueue_after_commit("notifications.tasks.send_notification_emails", ["n1", "n2"])
    assert sent == []
    for callback in callbacks:
        callback()
    assert sent == [(["n1", "n2"],)]


def test_background_only_work_is_not_queued_when_tasks_run_in_process(
    settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        enqueue_after_commit("notifications.tasks.publish_outbox", background_only=True)
    assert callbacks == []


def test_a_misspelt_task_fails_at_the_call_not_after_the_commit():
    with pytest.raises(NotRegistered):
        enqueue_after_commit("notifications.tasks.no_such_task")


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_DIR": str(tmp_path)}


@pytest.mark.slow
def test_a_fresh_process_finds_every_task_without_importing_the_tasks_modules(tmp_path):
    """Celery imports `tasks` modules only in a worker; web processes and commands look them up by name."""
    code = (
        "import sys, django; django.setup()\n"
        "from core.after_commit import registered_task\n"
        "assert 'accounts.tasks' not in sys.modules\n"
        "for name in ('accounts.tasks.send_password_reset_email', 'notifications.tasks.publish_outbox'):\n"
        "    assert registered_task(name).name == name\n"
        "print('ok')\n"
    )
    assert fresh_python(code, _env(tmp_path)).strip() == "ok"


@pytest.mark.slow
def test_threads_of_a_fresh_process_that_look_up_tasks_at_once_all_find_them(tmp_path):
    """Celery's discovery gives a second, concurrent caller nothing: the first request's threads must wait.

    Discovery is slowed down (each app's `tasks` import sleeps first) so that
    the threads surely overlap; before the lock, all but one raised
    NotRegistered, the 500 that one of twenty concurrent registrations met
    under gthread workers.
    """
    code = (
        "import sys, threading, time, django; django.setup()\n"
        "import celery.loaders.base as base\n"
        "real = base.find_related_module\n"
        "def slow(package, related_name):\n"
        "    time.sleep(0.05)\n"
        "    return real(package, related_name)\n"
        "base.find_related_module = slow\n"
        "from core.after_commit import registered_task\n"
        "barrier, found, failed = threading.Barrier(4), [], []\n"
        "def look_up():\n"
        "    barrier.wait()\n"
        "    try:\n"
        "        found.append(registered_task('notifications.tasks.publish_outbox').name)\n"
        "    except Exception as error:\n"
        "        failed.append(repr(error))\n"
        "threads = [threading.Thread(target=look_up) for _ in range(4)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print(len(found), failed)\n"
    )
    assert fresh_python(code, _env(tmp_path)).strip() == "4 []"
