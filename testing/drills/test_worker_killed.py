"""Drill 3: a Celery worker killed with SIGKILL in the middle of a task (a broadcast's email batch).

The task runs again on another worker (`acks_late` + `reject_on_worker_lost`, and Redis' visibility
timeout for a worker that died whole), and its effect happens once: one notification and one email per
user. The SMTP sink holds the first message open, unaccepted, while the worker is killed.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from testing.smtp import SmtpSink
from testing.stack import Stack, running_stack

pytestmark = pytest.mark.drill

TITLE = "Drill broadcast"


def _notifications_per_user(stack: Stack) -> list[int]:
    result = subprocess.run(
        [
            "psql", "-h", "127.0.0.1", "-p", str(stack.postgres.port), "-U", "postgres", "-d", "service", "-Atc",
            "SELECT count(*) FROM notifications_notification WHERE title = 'Drill broadcast' GROUP BY user_id",
        ],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return [int(line) for line in result.stdout.split()]


def test_a_worker_killed_mid_task_has_its_task_run_once_elsewhere(stack_folder):
    with (
        SmtpSink(hold_marker=TITLE) as smtp,
        running_stack(
            stack_folder,
            extra_env={
                "EMAIL_URL": smtp.url,
                "CELERY_VISIBILITY_TIMEOUT": "3",
                # The drill is about a dying worker, not the second factor: the admin who sends the
                # broadcast logs in with the password alone (MFA is drilled in accounts/tests).
                "MFA_REQUIRED_ROLES": "",
            },
        ) as stack,
    ):
        service = stack.gunicorn(workers=1)
        first = stack.celery_worker(name="first")
        members = [f"member{i}" for i in range(5)]
        for name in members:
            service.register_and_login(name)
        admin = service.login("admin", "an admin pass phrase")["access"]

        reply = service.request(
            "POST", "/api/v1/notifications/broadcast", {"title": TITLE, "body": "b"}, token=admin
        )
        assert reply.status == 202, reply.body
        assert smtp.holding.wait(60), f"the email task never reached the SMTP server:\n{first.log}"

        first.signal_group(signal.SIGKILL)
        first.process.wait(timeout=10)
        smtp.release.set()  # the held delivery drops, never accepted
        second = stack.celery_worker(name="second")

        recipients = [f"{name}@example.com" for name in members] + ["admin@example.com"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(smtp.count(to=r, subject=TITLE) == 0 for r in recipients):
            time.sleep(0.3)
        time.sleep(5)  # time enough for a duplicate to show up, if there were one

        assert [smtp.count(to=r, subject=TITLE) for r in recipients] == [1] * len(recipients), second.log
        assert _notifications_per_user(stack) == [1] * len(recipients)
        assert "send_notification_emails" in second.log
