"""Celery: the app's configuration, and a REAL worker on the real Redis running the notification
email task that a committed `notification_send()` queued (PostgreSQL and Redis only)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction

from accounts.tests.factories import UserFactory
from config.celery_app import app
from notifications import services, tasks
from notifications.models import Kind, Notification
from testing.processes import child_database_url
from testing.stack import Process, celery_worker_command

pytestmark = pytest.mark.xdist_group("celery_worker")


def test_celery_is_configured_for_json_time_limits_and_late_acks():
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.task_time_limit
    assert conf.task_soft_time_limit
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.task_acks_late is True
    # No broker: the in-memory transport (eager tasks still borrow a producer; see config/celery_app.py).
    assert conf.broker_url == (django_settings.CELERY_BROKER_URL or "memory://localhost/")
    assert conf.task_always_eager is (not django_settings.CELERY_BROKER_URL)


def test_the_tasks_are_registered_and_take_ids():
    for name in (
        "notifications.tasks.send_notification_emails",
        "notifications.tasks.broadcast_fanout",
        "notifications.tasks.publish_outbox",
        "notifications.tasks.purge_outbox",
    ):
        assert name in app.tasks
    assert tasks.broadcast_fanout.autoretry_for
    assert tasks.broadcast_fanout.retry_backoff


def _postgres_and_redis() -> bool:
    return connection.vendor == "postgresql" and bool(os.environ.get("REDIS_URL"))


def _worker_env(mails: Path, broker_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KAFKA_")}
    env.update(
        DATABASE_URL=child_database_url(),
        CELERY_BROKER_URL=broker_url,
        EMAIL_URL=f"filemail:///{mails}",
        CONN_MAX_AGE="0",
        LOG_DIR=str(mails.parent / "logs"),
    )
    return env


def worker_of(env: dict[str, str]) -> Process:
    """`celery -A config worker` in a subprocess (it logs through LOGGING, to stdout)."""
    return Process(
        celery_worker_command(
            "--pool", "solo", "--concurrency", "1", "--without-heartbeat", python=sys.executable
        ),
        env,
        "worker",
        ready_marker="ready.",
    )


@pytest.fixture
def producer_app():
    """This process queues to the broker for real (tasks are eager without CELERY_BROKER_URL)."""
    redis_url = os.environ["REDIS_URL"]
    broker_url = redis_url.rsplit("/", 1)[0] + "/15"
    saved = {key: app.conf[key] for key in ("task_always_eager", "broker_url")}

    def reset_pools():
        if app._pool is not None:
            app._pool.force_close_all()
            app._pool = None
        if "amqp" in app.__dict__:
            app.amqp._producer_pool = None

    reset_pools()
    app.conf.task_always_eager = False
    app.conf.broker_url = broker_url
    yield broker_url
    reset_pools()
    app.conf.update(saved)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(not _postgres_and_redis(), reason="needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_email_of_a_committed_notification(settings, tmp_path, producer_app):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    mails = tmp_path / "mails"
    mails.mkdir()
    user = UserFactory()
    assert services.notification_email_wanted(user_id=user.id, kind=Kind.SECURITY)
    worker = worker_of(_worker_env(mails, producer_app))
    try:
        assert worker.ready.wait(30), f"the worker did not start:\n{worker.log}"

        with transaction.atomic():
            notification = services.notification_send(
                user_id=user.id, kind=Kind.SECURITY, title="Sent by a real worker", body="b"
            )
            time.sleep(0.3)
            assert list(mails.iterdir()) == []  # nothing goes out before the commit

        deadline = time.monotonic() + 30
        sent = ""
        while time.monotonic() < deadline and not sent:
            for path in mails.iterdir():
                content = path.read_text()
                if "Sent by a real worker" in content:
                    sent = content
            time.sleep(0.2)
        assert sent, f"no mail from the worker:\n{worker.log}"
        assert user.email in sent
        assert "text/html" in sent
        while time.monotonic() < deadline:
            notification.refresh_from_db()
            if notification.emailed_at is not None:
                break
            time.sleep(0.1)
        assert notification.emailed_at is not None
        assert "notifications.tasks.send_notification_emails" in worker.log
        assert Notification.objects.filter(user=user).count() == 1
    finally:
        worker.stop()
