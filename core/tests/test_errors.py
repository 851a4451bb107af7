"""Domain errors (issue 22): services say what kind of "no", the API layer's one table says the
status; no domain error carries HTTP."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core import errors
from core.exceptions import STATUS, service_error_response, service_error_status


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.ServiceError("x"), 400),
        (errors.NotFound("x"), 404),
        (errors.Forbidden("x"), 403),
        (errors.AuthenticationFailed("x"), 401),
        (errors.Conflict("x"), 409),
        (errors.RateLimited("x", retry_after=7), 429),
        (errors.Unavailable("x", retry_after=7), 503),
        (errors.UpstreamFailed("x"), 502),
        (errors.TooLarge("x"), 413),
        (errors.Unsupported("x"), 415),
    ],
)
def test_each_kind_of_refusal_has_its_status(error, status):
    response = service_error_response(error)
    assert response.status_code == status == service_error_status(error)
    assert response.data == {"detail": "x", "code": error.code}


def test_a_refusal_for_now_says_when_to_try_again():
    assert service_error_response(errors.RateLimited("x", retry_after=42))["Retry-After"] == "42"
    assert service_error_response(errors.Unavailable("x", retry_after=0.2))["Retry-After"] == "1"
    assert not service_error_response(errors.NotFound("x")).has_header("Retry-After")


def test_a_subclass_takes_its_kinds_status_and_its_own_code():
    class LastThing(errors.Forbidden):
        code = "last_thing"

    error = LastThing("no")
    assert (service_error_status(error), error.code) == (403, "last_thing")


def test_every_kind_in_the_module_is_in_the_table():
    kinds = {
        value
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, errors.ServiceError)
        and not value.__name__.startswith("_")
    }
    assert kinds == {kind for kind, _ in STATUS}


def test_the_domain_errors_import_nothing_of_http():
    tree = ast.parse(Path(errors.__file__).read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert imported == ["__future__"]
