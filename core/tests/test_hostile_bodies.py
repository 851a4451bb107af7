"""Hostile request bodies get a 4xx, never a 500 (API.md → Conventions).

The limits themselves (413 over `DATA_UPLOAD_MAX_MEMORY_SIZE`, 400 for deep
nesting) are tested on their own first; then one parametrized sweep sends the
same generated hostile bodies, through every parser (JSON, form, multipart),
to every endpoint the URL resolver knows (testing/endpoints.py), with
every method that carries a body.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from accounts.cache import load_auth_state
from testing.endpoints import all_endpoints

pytestmark = pytest.mark.django_db

THREE_MB = 3 * 1024 * 1024
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
BOUNDARY = "hostile-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"

# Field names the API reads anywhere; a body setting all of them to one hostile
# value reaches the validation of every serializer, not only "missing field".
FIELDS = [
    "username", "email", "password", "full_name", "refresh", "token", "old_password", "new_password",
    "uid", "current_password", "role", "reason", "comment", "title", "body", "user_ids", "is_active",
    "roles", "kind", "data", "text", "resume_id", "requirements_id", "agent", "rag", "metadata",
    "score", "max_score", "answers", "topic", "quiz_id", "external_id", "access_token", "code",
    "redirect_uri", "id", "auth_date", "hash", "email_enabled", "grant_type",
]  # fmt: skip


def _multipart(fields: dict[str, bytes], files: dict[str, bytes] | None = None) -> bytes:
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value
            + b"\r\n"
        )
    for name, value in (files or {}).items():
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n".encode()
            + value
            + b"\r\n"
        )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def _all_fields(value: Any) -> bytes:
    return json.dumps(dict.fromkeys(FIELDS, value)).encode()


HOSTILE: dict[str, tuple[str, bytes]] = {
    "json-huge": (JSON, json.dumps({"username": "a" * THREE_MB, "password": "x"}).encode()),
    "json-deep-arrays": (JSON, b"[" * 1000 + b"]" * 1000),
    "json-deep-objects": (JSON, b'{"a":' * 1000 + b"1" + b"}" * 1000),
    "json-deep-in-a-field": (JSON, b'{"username": ' + b"[" * 100 + b"]" * 100 + b"}"),
    "json-deep-objects-in-every-field": (JSON, _all_fields(json.loads('{"a":' * 300 + "1" + "}" * 300))),
    "json-invalid-utf8": (JSON, b'{"username": "\xff\xfe\xfd", "password": "\xc3\x28"}'),
    "json-nul-everywhere": (JSON, _all_fields("a\u0000b")),
    "json-lone-surrogate": (JSON, _all_fields("\ud800").replace(b"\\ud800", b"\\ud800")),
    "json-lists-everywhere": (JSON, _all_fields([[], {}, None])),
    "json-objects-everywhere": (JSON, _all_fields({"$gt": ""})),
    "json-huge-numbers": (JSON, _all_fields(2**70)),
    "json-negative-numbers": (JSON, _all_fields(-(2**63) - 1)),
    "json-infinite-number": (JSON, b'{"score": 1e999, "max_score": -1e999, "username": 1e999}'),
    "json-nulls-everywhere": (JSON, _all_fields(None)),
    "json-booleans-everywhere": (JSON, _all_fields(True)),
    "json-long-strings": (JSON, _all_fields("x" * 20_000)),
    "json-non-object-array": (JSON, b"[1, 2, 3]"),
    "json-non-object-string": (JSON, b'"just a string"'),
    "json-non-object-number": (JSON, b"42"),
    "json-null": (JSON, b"null"),
    "json-truncated": (JSON, b'{"username": "abc'),
    "json-too-many-digits": (JSON, b'{"score": ' + b"9" * 5000 + b"}"),
    "json-nan": (JSON, b'{"score": NaN}'),
    "json-wrong-charset": ("application/json; charset=utf-16", b'{"username": "x"}'),
    "form-huge": (FORM, b"username=" + b"a" * THREE_MB),
    "form-invalid-utf8": (FORM, b"username=%ff%fe&password=%c3%28&grant_type=\xff"),
    "form-nul": (FORM, b"username=a%00b&password=%00&grant_type=password"),
    "form-too-many-fields": (FORM, "&".join(f"f{i}=1" for i in range(2000)).encode()),
    "form-deep-brackets": (FORM, b"a" + b"[a]" * 1000 + b"=1"),
    "multipart-huge-field": (MULTIPART, _multipart({"text": b"a" * THREE_MB})),
    "multipart-invalid-utf8": (MULTIPART, _multipart({"\xff": b"\xff\xfe", "title": b"\xc3\x28"})),
    "multipart-nul": (MULTIPART, _multipart({"title": b"a\x00b", "text": b"\x00"})),
    "multipart-truncated": (MULTIPART, _multipart({"title": b"x"})[:-20]),
    "multipart-no-boundary": ("multipart/form-data", b"--x\r\n\r\n"),
    "multipart-too-many-files": (MULTIPART, _multipart({}, {f"file{i}": b"x" for i in range(150)})),
    "multipart-binary-file": (MULTIPART, _multipart({"title": b"t"}, {"file": bytes(range(256)) * 64})),
    "text-plain": ("text/plain", b"\x00\x01\x02 not json"),
}
BODY_METHODS = ("post", "put", "patch", "delete")
#: What an answer must never hold: the interpreter's advice, a dumped Python object, a codec's words.
IMPLEMENTATION = ("sys.", "set_int_max_str_digits", "ErrorDetail", "Traceback", "codec can't")


@pytest.fixture
def api(admin_user, login) -> APIClient:
    """An administrator: every endpoint reads the body instead of stopping at 401/403.

    Forced authentication with the principal of a real session, so the logout
    endpoints swept along the way do not lock the sweep out.
    """
    tokens = login(admin_user)
    principal = load_auth_state(session_id=tokens["session_id"], user_id=str(admin_user.id)).principal
    client = APIClient()
    client.force_authenticate(user=principal)
    return client


@pytest.fixture
def staff(admin_user) -> Client:
    admin_user.is_superuser = True
    admin_user.save()
    client = Client()
    client.force_login(admin_user)
    return client


def test_a_json_body_over_the_limit_is_413(api_client):
    assert django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE < THREE_MB
    content_type, body = HOSTILE["json-huge"]
    response = api_client.post("/api/v1/auth/register", body, content_type=content_type)
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is too large.", "code": "too_large"}


def test_a_form_body_over_the_limit_is_413(api_client):
    content_type, body = HOSTILE["form-huge"]
    response = api_client.post("/api/v1/auth/login", body, content_type=content_type)
    assert response.status_code == 413
    assert set(response.json()) == {"detail", "code"}


def test_an_admin_form_over_the_limit_is_413(staff):
    content_type, body = HOSTILE["form-huge"]
    response = staff.post("/admin/accounts/user/add/", body, content_type=content_type)
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def test_a_body_just_under_the_limit_is_parsed(api_client):
    body = json.dumps({"username": "a" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE - 100)})
    response = api_client.post("/api/v1/auth/login", body, content_type=JSON)
    assert response.status_code == 400  # read and validated: the password is missing
    assert "password" in response.json()


@pytest.mark.parametrize("name", ["json-deep-arrays", "json-deep-objects"])
def test_deeply_nested_json_is_400(api_client, name):
    content_type, body = HOSTILE[name]
    response = api_client.post("/api/v1/auth/login", body, content_type=content_type)
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert "nested" in response.json()["detail"]


def test_nesting_short_of_the_limit_is_parsed(api_client):
    body = {"username": "x", "password": "y", "extra": json.loads("[" * 300 + "]" * 300)}
    response = api_client.post("/api/v1/auth/login", body, format="json")
    assert response.status_code == 400  # parsed; the field is named as one login does not take
    assert response.json() == {"extra": ["Unknown field."]}


@pytest.mark.parametrize("name", ["json-infinite-number", "json-lone-surrogate", "json-nan"])
def test_values_no_renderer_or_database_could_take_are_400(api_client, name):
    content_type, body = HOSTILE[name]
    response = api_client.post("/api/v1/auth/login", body, content_type=content_type)
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def _send(client: Any, method: str, path: str, content_type: str, body: bytes) -> Any:
    cache.clear()  # the per-address limits would otherwise answer 429 before any parsing
    return getattr(client, method)(path, body, content_type=content_type)


def _provider_unavailable(response: Any) -> bool:
    """A deliberate 503 (API.md: a provider that is not configured), not a failure to handle the body."""
    if response.status_code != 503 or not response.get("Retry-After"):
        return False
    code = response.json().get("code")
    return code not in (None, "server_error", "database_unavailable")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_every_endpoint_answers_every_hostile_body_with_a_4xx(api, staff, name, settings):
    # A configured Telegram login checks the body's signature; an unconfigured one answers 503 first.
    settings.TELEGRAM_BOT_TOKEN = "123456:hostile-body-sweep"
    content_type, body = HOSTILE[name]
    endpoints = all_endpoints()
    assert any(e.is_api for e in endpoints)
    assert any(e.is_admin for e in endpoints)
    # Logging out of the admin last, so the other admin pages still see a session.
    endpoints.sort(key=lambda e: "logout" in e.path)
    failures: list[str] = []
    reached = 0  # answers from past the body's parsing (not refused at the door)
    for endpoint in endpoints:
        client: Callable[..., Any] = staff if endpoint.is_admin else api
        for method in ("post",) if endpoint.is_admin else BODY_METHODS:
            response = _send(client, method, endpoint.path, content_type, body)
            if response.status_code >= 500 and not _provider_unavailable(response):
                failures.append(f"{method.upper()} {endpoint.path}: {response.status_code}")
            elif endpoint.is_api and response.get("Content-Type", "").startswith("application/json"):
                data = response.json()
                assert isinstance(data, dict | list), (endpoint.path, data)
                # No message names the implementation (API.md → Conventions).
                leaks = [mark for mark in IMPLEMENTATION if mark in response.content.decode()]
                assert not leaks, (method, endpoint.path, response.content[:300])
            if response.status_code not in (401, 403, 404, 405, 415, 429):
                reached += 1
    assert not failures, failures
    assert reached, "no endpoint read the body: the sweep tested nothing"
