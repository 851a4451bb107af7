"""Password reset does the same work for a known and an unknown address (issue 10).

Timing must not tell which addresses have accounts: the request path is the
same for both (the same queries, one task queued with the same arguments),
and the task does the same work for both but the hand-over to the mail
backend. The medians themselves: benchmarks/password_reset_timing.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from celery.signals import task_prerun
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from accounts.tests.factories import UserFactory

RESET = "/api/v1/auth/password/reset"
IP, AGENT = "198.51.100.7", "reset-probe/1.0"

pytestmark = pytest.mark.django_db


def reset(email: str, capture: Any) -> dict[str, Any]:
    """One reset request; what the request did, and what its queued work did."""
    client = APIClient(REMOTE_ADDR=IP, HTTP_USER_AGENT=AGENT)
    with CaptureQueriesContext(connection) as request_queries, capture(execute=False) as callbacks:
        response = client.post(RESET, {"email": email}, format="json")
    tasks: list[tuple[str, tuple[Any, ...]]] = []

    def record(sender: Any = None, args: Any = None, **kwargs: Any) -> None:
        tasks.append((sender.name, tuple(args or ())))

    task_prerun.connect(record, weak=False)
    try:
        with CaptureQueriesContext(connection) as task_queries:
            for callback in callbacks:
                callback()
    finally:
        task_prerun.disconnect(record)
    return {
        "status": response.status_code,
        "body": response.json(),
        "request_queries": len(request_queries),
        "callbacks": len(callbacks),
        "tasks": tasks,
        "task_queries": len(task_queries),
    }


def test_known_and_unknown_addresses_take_the_same_path(django_capture_on_commit_callbacks, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    user = UserFactory()
    unknown = reset("nobody-at-all@example.com", django_capture_on_commit_callbacks)
    known = reset(user.email, django_capture_on_commit_callbacks)

    assert known["status"] == unknown["status"] == 202
    assert known["body"] == unknown["body"]
    # The request: the same queries, one task queued after commit, nothing else.
    assert known["request_queries"] == unknown["request_queries"]
    assert known["callbacks"] == unknown["callbacks"] == 1
    assert [name for name, _ in known["tasks"]] == [name for name, _ in unknown["tasks"]]
    assert known["tasks"][0] == ("accounts.tasks.process_password_reset", (user.email, IP, AGENT))
    assert unknown["tasks"][0] == (
        "accounts.tasks.process_password_reset",
        ("nobody-at-all@example.com", IP, AGENT),
    )
    # The task: the same queries (the lookup and an audit row) for both...
    assert known["task_queries"] == unknown["task_queries"]
    # ...and a mail only to the real account.
    assert [m.to for m in mail.outbox] == [[user.email]]


def test_both_paths_leave_an_audit_row_with_the_requests_address(django_capture_on_commit_callbacks):
    user = UserFactory()
    reset(user.email, django_capture_on_commit_callbacks)
    reset("nobody-at-all@example.com", django_capture_on_commit_callbacks)
    rows = AuditEvent.objects.filter(kind=AuditEvent.Kind.PASSWORD_RESET_REQUESTED).order_by("created_at")
    assert [(r.user_id, r.detail["known"], r.ip, r.user_agent) for r in rows] == [
        (user.id, True, IP, AGENT),
        (None, False, IP, AGENT),
    ]


@pytest.mark.parametrize("state", ["inactive", "deleted"])
def test_an_account_that_cannot_log_in_is_an_unknown_address(django_capture_on_commit_callbacks, state):
    from django.utils import timezone

    user = UserFactory()
    if state == "inactive":
        user.is_active = False
    else:
        user.deleted_at = timezone.now()
    user.save()
    unknown = reset("nobody-at-all@example.com", django_capture_on_commit_callbacks)
    gone = reset(user.email, django_capture_on_commit_callbacks)
    assert gone["request_queries"] == unknown["request_queries"]
    assert gone["task_queries"] == unknown["task_queries"]
    assert mail.outbox == []
