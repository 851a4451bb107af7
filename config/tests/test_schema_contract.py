"""The OpenAPI schema documents what the API really answers, so that a client (and schemathesis,
`make fuzz`) can rely on it: the shared error answers on every operation, and links from each create
to the operations on what it created."""

from __future__ import annotations

import pytest

ERRORS = {"400", "401", "403", "404", "413", "415", "429", "503"}
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


def test_every_operation_documents_the_shared_errors_with_their_body(schema):
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        assert set(responses) >= ERRORS, (method, path, sorted(responses))
        for status in ERRORS:
            content = responses[status]["content"]["application/json"]["schema"]
            assert content["$ref"].rsplit("/", 1)[1] in {"Error", "ValidationError"}, (method, path, status)
        for status in ("429", "503"):
            if "headers" in responses[status]:
                assert "Retry-After" in responses[status]["headers"]
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
