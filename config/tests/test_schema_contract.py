"""The OpenAPI schema documents what the API really answers, so that a client (and schemathesis,
`make fuzz`) can rely on it: the error answers with their shared body, and links from each create
to the operations on what it created."""

from __future__ import annotations

import pytest

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


def test_every_documented_error_has_the_shared_body(schema):
    """Each operation lists only the errors it can answer (test_openapi_text.py); each has its body."""
    for path, method, operation in _operations(schema):
        for status, answer in operation["responses"].items():
            if status[0] not in "45":
                continue
            content = answer["content"]["application/json"]["schema"]
            assert content["$ref"].rsplit("/", 1)[1] in {"Error", "ValidationError"}, (method, path, status)
            if status in ("429", "503"):
                assert "Retry-After" in answer.get("headers", {}), (method, path, status)
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["detail", "code"]


def test_an_error_documented_by_description_alone_gets_the_error_body(schema):
    answer = schema["paths"]["/api/v1/auth/social/yandex"]["post"]["responses"]["502"]
    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


@pytest.mark.parametrize(
    "collection",
    [
        "/api/v1/users",
        "/api/v1/role-requests",
        "/api/v1/chat-sessions",
        "/api/v1/quiz-results",
        "/api/v1/resumes",
        "/api/v1/requirements",
        "/api/v1/processings",
    ],
)
def test_each_create_links_to_the_read_and_delete_of_what_it_created(schema, collection):
    create = schema["paths"][collection]["post"]["responses"]
    answer = create.get("201") or create.get("202")
    links = answer["links"]
    item = schema["paths"][f"{collection}/{{id}}"]
    for method in ("get", "delete"):
        if method in item:
            operation_id = item[method]["operationId"]
            assert links[operation_id] == {
                "operationId": operation_id,
                "parameters": {"id": "$response.body#/id"},
            }
