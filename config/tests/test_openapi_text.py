"""The OpenAPI text (issue 21): each operation described by itself, with only the errors it can answer.

A viewset's docstring used to describe every operation of it (POST /quiz-results said "The caller's
quiz results, latest first"; /approve said "Ask for a role"), and every operation listed every error
from 400 to 503 (413 and 415 on GET /users/me). `config/schema_text.py` describes each operation;
`config.schema.document_errors` derives the errors from each operation's shape and its view.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from config.schema_text import OPERATIONS

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS and path.startswith("/api/v1/"):
                yield path, method, operation


def _errors(schema, method, path):
    return {code for code in schema["paths"][path][method]["responses"] if code[0] in "45"}


def test_get_users_me_lists_no_body_errors_and_no_refusal_it_cannot_give(schema):
    assert _errors(schema, "get", "/api/v1/users/me") == {"401", "503"}


def test_an_upload_lists_what_an_upload_can_answer(schema):
    errors = _errors(schema, "post", "/api/v1/resumes")
    assert {"400", "401", "413", "415", "429", "503"} <= errors
    assert "403" not in errors  # any user may upload
    assert "404" not in errors  # no object named by the path


@pytest.mark.parametrize(
    ("method", "path", "present", "absent"),
    [
        # 401 only where a token is checked
        ("post", "/api/v1/auth/register", {"400", "429"}, {"401", "403", "404"}),
        ("post", "/api/v1/auth/password/reset", {"400", "429"}, {"401"}),
        # 403 at login: `mfa_required`, the second factor's turn (a service's answer, schema_text's)
        ("post", "/api/v1/auth/login", {"401", "403", "429"}, {"404"}),
        ("post", "/api/v1/auth/mfa/verify", {"400", "401", "429"}, {"403", "404"}),
        # 403 only where a permission (or a service) can refuse an authenticated caller
        ("get", "/api/v1/users", {"401", "403", "404"}, {"413", "415", "429"}),
        ("get", "/api/v1/resumes", {"401", "404"}, {"400", "403", "413", "415", "429"}),
        ("patch", "/api/v1/users/me", {"400", "403", "429"}, {"404"}),
        # 404 only for an object named by the path, or a list's page cursor
        ("post", "/api/v1/users", {"400", "403"}, {"404", "429"}),
        ("get", "/api/v1/roles", {"401"}, {"400", "404", "413", "415"}),
        ("delete", "/api/v1/quiz-results/{id}", {"404"}, {"400", "413", "415", "429"}),
        # 429 only where a throttle or a service's limit applies
        ("post", "/api/v1/processings", {"404", "429"}, {"403"}),
        ("post", "/api/v1/quiz-results", {"400"}, {"404", "429"}),
        # a DELETE that takes a body says so
        ("delete", "/api/v1/users/me", {"400", "413", "415", "429"}, {"404"}),
    ],
)
def test_each_operation_lists_the_errors_it_can_answer(schema, method, path, present, absent):
    errors = _errors(schema, method, path)
    assert present <= errors, (method, path, sorted(errors))
    assert not absent & errors, (method, path, sorted(errors))


def test_no_operation_lists_405(schema):
    """A method a path does not list answers 405: no operation answers it for its own method."""
    assert not [(m, p) for p, m, operation in _operations(schema) if "405" in operation["responses"]]


def test_every_operation_answers_503_with_retry_after(schema):
    for path, method, operation in _operations(schema):
        assert "Retry-After" in operation["responses"]["503"]["headers"], (method, path)


def test_a_post_is_not_described_as_its_list(schema):
    paths = schema["paths"]
    assert (
        paths["/api/v1/quiz-results"]["post"]["description"]
        != paths["/api/v1/quiz-results"]["get"]["description"]
    )
    approve = paths["/api/v1/role-requests/{id}/approve"]["post"]
    assert "Ask for a role" not in approve["description"]
    assert approve["summary"] == "Approve a role request"


def test_every_operation_has_its_own_summary_and_description(schema):
    for path, method, operation in _operations(schema):
        assert operation.get("summary"), (method, path)
        assert operation.get("description"), (method, path)
    by_path: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path, method, operation in _operations(schema):
        by_path[path][operation["description"]].append(method)
    shared = {
        path: methods for path, texts in by_path.items() for methods in texts.values() if len(methods) > 1
    }
    assert not shared, shared
    # Nor twice the same summary anywhere: each names what its operation does.
    summaries = [operation["summary"] for _, _, operation in _operations(schema)]
    assert len(summaries) == len(set(summaries))


def test_the_text_table_names_only_operations_that_exist(schema):
    published = {f"{method.upper()} {path}" for path, method, _ in _operations(schema)}
    assert set(OPERATIONS) <= published, sorted(set(OPERATIONS) - published)


def test_every_error_a_service_adds_is_an_error_status():
    for name, text in OPERATIONS.items():
        assert all(code[0] in "45" and len(code) == 3 for code in text.errors), name


def test_a_list_with_a_filter_lists_400_and_one_that_only_pages_does_not(schema):
    """`?topic=` with a NUL character is a 400 (found by schemathesis); a cursor never is."""
    assert "400" in _errors(schema, "get", "/api/v1/quiz-results")
    assert "400" not in _errors(schema, "get", "/api/v1/resumes")
