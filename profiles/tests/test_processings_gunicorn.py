"""The start limit across processes: two real gunicorn workers on PostgreSQL and Redis, 20 starts
of one user fired at once: exactly 5 are accepted in the window (a get-then-set would let several
workers past the limit together). And an upload sent chunked, without a length, through the same
server: read up to the limit, then refused.

Needs PostgreSQL (the workers must see the test's committed rows) and Redis (the shared counter).
"""

from __future__ import annotations

import http.client
import time

import pytest
from django.conf import settings as django_settings
from django.db import connection

from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD, bearer_for
from profiles.models import Processing
from testing.processes import child_database_url, environment, running
from testing.races import run_at_once

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not django_settings.REDIS_URL,
        reason="needs PostgreSQL and Redis (REDIS_URL): the workers share the database and the counter",
    ),
]


@pytest.fixture
def server(tmp_path):
    """gunicorn with two sync workers on the test database and the test's Redis."""
    env = environment(
        "KAFKA_BOOTSTRAP_SERVERS",
        "CELERY_BROKER_URL",
        DATABASE_URL=child_database_url(),
        REDIS_URL=django_settings.REDIS_URL,
        DOCUMENT_STORAGE_DIR=str(tmp_path / "documents"),
        LOG_DIR=str(tmp_path / "logs"),
        UPLOAD_MAX_BYTES="100000",
    )
    access_log = tmp_path / "access.log"
    options = [
        "--workers", "2", "--timeout", "30",
        # Sync workers, one request at a time each: twenty at once must be shared by both
        # processes (a threaded worker may take them all), so the limit is raced across processes.
        "--worker-class", "sync", "--threads", "1",
        "--access-logfile", str(access_log), "--access-logformat", "%(p)s %(s)s %(U)s",
    ]  # fmt: skip
    with running(env, tmp_path, gunicorn=True, options=options) as started:
        yield started.port, access_log


def _documents(user) -> tuple[str, str, str]:
    client = bearer_for(user)
    resume = client.post("/api/v1/resumes", {"text": "resume"}, format="json").json()["id"]
    requirements = client.post("/api/v1/requirements", {"text": "requirements"}, format="json").json()["id"]
    return client.tokens["access"], resume, requirements


def _pids(access_log, path: str) -> set[str]:
    return {line.split()[0] for line in access_log.read_text().splitlines() if path in line}


def _both_workers_serving(port: int, access_log, deadline: float = 30) -> None:
    """Wait until each worker has answered a request: the server is "up" once one answers, and the
    other may still be booting (warming its parser zygote), which would leave it all the starts."""

    def probe() -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/health/live")
        return conn.getresponse().status

    end = time.monotonic() + deadline
    while len(_pids(access_log, "/health/live")) < 2:
        assert time.monotonic() < end, "the second gunicorn worker never answered"
        run_at_once([probe] * 8, timeout=30)
        time.sleep(0.2)  # the access log is written after each response


def test_two_workers_accept_exactly_five_starts_in_the_window(server):
    port, access_log = server
    user = UserFactory(password=PASSWORD)
    access, resume, requirements = _documents(user)
    body = f'{{"resume_id": "{resume}", "requirements_id": "{requirements}"}}'

    def fire() -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(
            "POST",
            "/api/v1/processings",
            body=body,
            headers={"Authorization": f"Bearer {access}", "Content-Type": "application/json"},
        )
        return conn.getresponse().status

    _both_workers_serving(port, access_log)
    statuses = run_at_once([fire] * 20, timeout=60)

    assert sorted(statuses) == [202] * 5 + [429] * 15, statuses
    assert Processing.objects.filter(user=user).count() == 5
    time.sleep(0.5)  # the access log is written after each response
    pids = _pids(access_log, "/api/v1/processings")
    assert len(pids) == 2, pids  # both workers took starts


def test_a_chunked_upload_is_read_only_up_to_the_limit(server):
    port, _ = server
    user = UserFactory(password=PASSWORD)
    access, _, _ = _documents(user)
    boundary = "XyZboundary"

    def send(size: int) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.putrequest("POST", "/api/v1/resumes")
        conn.putheader("Authorization", f"Bearer {access}")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="cv.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        parts = [head, b"a" * size, f"\r\n--{boundary}--\r\n".encode()]
        try:
            for part in parts:
                for start in range(0, len(part), 65536):
                    chunk = part[start : start + 65536]
                    conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the rest was sent: what we want
        response = conn.getresponse()
        return response.status, response.read()

    status, body = send(5000)
    assert status == 201, body
    status, body = send(3_000_000)
    assert status == 413, body
    assert b"upload_too_large" in body
