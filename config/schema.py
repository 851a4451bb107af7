"""OpenAPI schema details drf-spectacular cannot infer."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class SessionJWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.SessionJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def strip_optional_slash(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Routes accept an optional trailing slash (`/?`); publish the canonical path without it."""
    result["paths"] = {
        (path.rstrip("/") if path.startswith("/api/v1/") else path): item
        for path, item in result.get("paths", {}).items()
    }
    return result


# What any operation may answer besides its success (API.md → Conventions): every error is JSON with
# `detail` and `code`, except validation errors, which name their fields.
ERROR_STATUSES = {
    "400": "Invalid input: `{field: [message, ...]}`, or `{detail, code}`.",
    "401": "Not authenticated, or the token is invalid, expired or revoked (`WWW-Authenticate: Bearer`).",
    "403": "Authenticated but not allowed.",
    "404": "Not found (also for another user's object).",
    "405": "Method not allowed.",
    "413": "Body or upload too large.",
    "415": "Unsupported media type or upload type.",
    "429": "Throttled or locked (`Retry-After`, in seconds).",
    "503": "A dependency (the database, a provider) is unavailable (`Retry-After`).",
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail", "code"],
}
VALIDATION_ERROR_SCHEMA = {"type": "object", "additionalProperties": True}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}


def _error_content(status_code: str) -> dict[str, Any]:
    name = "ValidationError" if status_code == "400" else "Error"
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Add the shared error answers to every API operation that does not document its own."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    schemas.setdefault("ValidationError", VALIDATION_ERROR_SCHEMA)
    for path, item in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status_code, documented in responses.items():
                # An error a view documents by its description alone (a 502, say) has the shared body.
                if status_code[0] in "45" and "content" not in documented:
                    documented["content"] = _error_content(status_code)
            for status_code, description in ERROR_STATUSES.items():
                if status_code in responses:
                    continue
                answer: dict[str, Any] = {"description": description, "content": _error_content(status_code)}
                if status_code in {"429", "503"}:
                    answer["headers"] = RETRY_AFTER
                responses[status_code] = answer
    return result


def link_created_resources(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """OpenAPI links from each create to the read, change and delete of what it created.

    For every collection `P` whose POST answers an object with an `id`, and whose item path `P/{id}`
    exists, the created answer links to each operation on `P/{id}` (and its sub-actions). Clients see
    the relation; schemathesis' stateful phase follows it (create -> read -> change -> delete).
    """
    paths = result.get("paths", {})
    for path, item in paths.items():
        create = item.get("post")
        if not create:
            continue
        targets = [
            (target, operation)
            for target, target_item in paths.items()
            if target.startswith(f"{path}/{{id}}")
            for method, operation in target_item.items()
            if method in {"get", "put", "patch", "delete", "post"} and "operationId" in operation
        ]
        if not targets:
            continue
        for status_code in ("201", "202"):
            answer = create.get("responses", {}).get(status_code)
            if answer is None:
                continue
            answer["links"] = {
                operation["operationId"]: {
                    "operationId": operation["operationId"],
                    "parameters": {"id": "$response.body#/id"},
                }
                for _, operation in targets
            }
    return result
