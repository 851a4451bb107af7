"""The SQL cost of every list endpoint, pinned in `query_counts.json` (as NetBox pins its own).

A list must not cost more with more rows or a bigger page (API.md, Conventions: no N+1).
Each endpoint is requested with a warm cache (authentication costs no query), then
again after more rows were added, at two page sizes: every count must equal the
pinned one. A change in a count then shows in review as a one-line diff of the JSON.

Adding a list endpoint: add its `"GET /api/v1/<path>": n` to `query_counts.json`, and
either a seed below that makes rows the viewer (an administrator) can see, or a test of
the app's own that reads the same file (as `profiles/tests` do for the documents). The
first test finds every router `list` route, so one without a pinned count fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import EndpointEnumerator

from accounts import services as accounts_services
from accounts.models import User
from accounts.tests.factories import UserFactory
from accounts.tests.support import bearer_for
from notifications import services as notifications_services
from notifications.models import Kind

COUNTS: dict[str, int] = json.loads((Path(__file__).parent / "query_counts.json").read_text())

#: List endpoints that are not a router's `list` route.
EXTRA_LISTS = {"GET /api/v1/roles"}

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


def _users(viewer: User, n: int) -> None:
    UserFactory.create_batch(n, roles=["user", "moderator"])


def _sessions(viewer: User, n: int) -> None:
    for _ in range(n):
        accounts_services.session_open(user=viewer, ip="127.0.0.1", user_agent="query-counts")


def _role_requests(viewer: User, n: int) -> None:
    for asker in UserFactory.create_batch(n):
        accounts_services.role_request_create(user_id=asker.id, role="moderator", reason="counts")


def _notifications(viewer: User, n: int) -> None:
    for index in range(n):
        notifications_services.notification_send(user_id=viewer.id, kind=Kind.SECURITY, title=f"note {index}")


def _roles(viewer: User, n: int) -> None:
    for _ in range(n):
        Group.objects.create(name=f"role-{Group.objects.count()}")


#: Per pinned endpoint: make `n` more rows the viewer sees.
SEEDS: dict[str, Callable[[User, int], None]] = {
    "GET /api/v1/users": _users,
    "GET /api/v1/auth/sessions": _sessions,
    "GET /api/v1/role-requests": _role_requests,
    "GET /api/v1/notifications": _notifications,
    "GET /api/v1/roles": _roles,
}


def list_endpoints() -> set[str]:
    found = set(EXTRA_LISTS)
    for path, _, method, callback in EndpointEnumerator().get_api_endpoints():
        if method == "GET" and (getattr(callback, "actions", None) or {}).get("get") == "list":
            found.add(f"GET {path.rstrip('/')}")
    return found


def test_every_list_endpoint_is_pinned():
    missing = list_endpoints() - set(COUNTS)
    assert not missing, f"pin these list endpoints in config/tests/query_counts.json: {sorted(missing)}"
    assert set(SEEDS) <= set(COUNTS)


def queries(client: Any, path: str, page_size: int) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, {"page_size": page_size})
    assert response.status_code == 200, response.content
    return len(captured)


@pytest.mark.parametrize("endpoint", sorted(SEEDS))
def test_the_list_costs_the_pinned_queries_whatever_the_rows_and_page_size(endpoint, admin_user):
    path = endpoint.split(" ", 1)[1]
    seed = SEEDS[endpoint]
    client = bearer_for(admin_user)
    seed(admin_user, 2)
    client.get(path)  # warm: the cached user and session, the touch mark

    measured = {(rows, size): 0 for rows in (2, 7) for size in (3, 100)}
    for size in (3, 100):
        measured[(2, size)] = queries(client, path, size)
    seed(admin_user, 5)
    for size in (3, 100):
        measured[(7, size)] = queries(client, path, size)

    assert set(measured.values()) == {COUNTS[endpoint]}, measured
