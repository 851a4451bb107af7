"""The fixtures every app's tests share beyond users, clients and the Kafka broker (those are in
the root conftest.py, which reads KAFKA_TEST_BOOTSTRAP where docs/configuration.md says): a Redis,
ports that refuse or never answer, the relay's producer dropped around a test that points it at
a broker, the OpenAPI document; and the static files found once per process.

A pytest plugin (the root conftest.py names it in `pytest_plugins`); the classes that start the
servers are in `testing/stack.py`, which the drills use as well.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

import pytest

from testing.stack import free_port, wait_for_port

# --- the relay ------------------------------------------------------------------------------------


@pytest.fixture
def no_producer() -> Iterator[None]:
    """The relay keeps one producer per process: none may leak from one test (and broker) to another."""
    from notifications import outbox

    outbox._drop_producer()
    yield
    outbox._drop_producer()


# --- Redis ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: the suite's (REDIS_URL, database 14), or a throwaway redis-server of our own."""
    given = os.environ.get("REDIS_URL")
    if given:
        yield given.rsplit("/", 1)[0] + "/14"
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with suppress(RuntimeError):  # as before: the test that uses it says what failed
        wait_for_port(port, timeout=10)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


# --- servers that do not work -----------------------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused at once."""
    return free_port()


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers: a hung server."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield int(sock.getsockname()[1])
    sock.close()


# --- the OpenAPI document -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def openapi_schema(django_db_setup: Any, django_db_blocker: Any) -> dict[str, Any]:
    """`/api/schema/?format=json`, generated once per test process (a second or so each time);
    read it, do not change it."""
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200
    return dict(response.json())


# --- the static files ---------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _static_files_found_once() -> Iterator[None]:
    """WhiteNoise walks every app's static folder (`WHITENOISE_USE_FINDERS`) each time a test client
    builds its middleware: a third of the time of the tests that make a few clients. The files do
    not change during a run, so the first walk serves every later client built with the same
    settings (what WhiteNoise answers for a file is the same)."""
    from django.conf import settings
    from whitenoise.middleware import WhiteNoiseMiddleware

    walk = WhiteNoiseMiddleware.add_files_from_finders
    found: dict[tuple[Any, ...], dict[str, Any]] = {}

    def add_files_from_finders(self: WhiteNoiseMiddleware) -> None:
        key = (
            self.static_prefix, self.max_age, self.allow_all_origins, self.charset,
            self.add_headers_function, self.index_file,
            getattr(self.immutable_file_test, "__func__", self.immutable_file_test),
            tuple(settings.INSTALLED_APPS), tuple(map(str, getattr(settings, "STATICFILES_DIRS", ()))),
            tuple(getattr(settings, "STATICFILES_FINDERS", ())),
        )  # fmt: skip
        if key not in found:
            before = dict(self.files)
            walk(self)
            found[key] = {url: file for url, file in self.files.items() if before.get(url) is not file}
        self.files.update(found[key])

    WhiteNoiseMiddleware.add_files_from_finders = add_files_from_finders  # type: ignore[method-assign]
    yield
    WhiteNoiseMiddleware.add_files_from_finders = walk  # type: ignore[method-assign]
