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


# The error answers (API.md → Conventions): every error is JSON with `detail` and `code`, except
# validation errors, which name their fields. Each operation lists only those it can answer
# (`document_errors`): what its shape implies, plus what its service adds (config/schema_text.py).
# 405 is no operation's answer: a method a path does not list answers it.
ERROR_STATUSES = {
    "400": "Invalid input: `{field: [message, ...]}` naming each field, or `{detail, code}`.",
    "401": "No access token, or it is invalid, expired or revoked (`WWW-Authenticate: Bearer`).",
    "403": "Authenticated but not allowed.",
    "404": "Not found (also for another user's object).",
    "413": "The body is over 2 MiB (`DATA_UPLOAD_MAX_MEMORY_SIZE`).",
    "415": "The body is not of a content type this operation takes, or cannot be read as one.",
    "429": "Throttled (`Retry-After`, in seconds).",
    "503": "The database is unavailable (`Retry-After`, in seconds).",
}
NOT_FOUND = {
    "object": "No such object among the caller's (another user's answers 404 too).",
    "cursor": "The `cursor` is not one this list handed out.",
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail", "code"],
}
VALIDATION_ERROR_SCHEMA = {"type": "object", "additionalProperties": True}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
METHODS = ("get", "put", "patch", "delete", "post")
# Permissions that refuse nobody who is authenticated: no 403 of their own.
OPEN_PERMISSIONS = {"AllowAny", "IsAuthenticated"}


def _error_content(status_code: str) -> dict[str, Any]:
    name = "ValidationError" if status_code == "400" else "Error"
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _canonical(path: str) -> str:
    """A URL pattern's path as the schema publishes it (see `strip_optional_slash`)."""
    return path.rstrip("/").replace("{pk}", "{id}")


def _views(generator: Any) -> dict[tuple[str, str], Any]:
    """(method, path) -> the view instance that answers it, as the schema generator made it."""
    views = {}
    for path, _regex, method, callback in getattr(generator, "endpoints", None) or ():
        views[(method.lower(), _canonical(path))] = generator.create_view(callback, method)
    return views


def _refusals(view: Any) -> list[str]:
    """What the view's permissions say when they refuse an authenticated caller."""
    messages = []
    for permission in view.get_permissions() if view is not None else ():
        if type(permission).__name__ not in OPEN_PERMISSIONS:
            messages.append(getattr(permission, "message", ERROR_STATUSES["403"]))
    return messages


def _throttle_settings(view: Any) -> list[str]:
    """The settings naming the rates of the view's throttles (`THROTTLE_<SCOPE>`)."""
    throttles = view.get_throttles() if view is not None else ()
    return [
        f"`THROTTLE_{throttle.scope.upper()}`" for throttle in throttles if getattr(throttle, "scope", None)
    ]


#: The list parameters that only page: they never make a 400.
PAGING = frozenset({"cursor", "page_size"})


def implied_errors(operation: dict[str, Any], view: Any) -> dict[str, str]:
    """The errors an operation's shape implies, each with what it means here.

    A body: 400 (and 413 and 415: too large, or not JSON). A bearer token it checks: 401. A
    permission beyond being logged in: 403. An object named by the path, or a page `cursor`: 404.
    A throttle: 429. The database, behind every operation (the caller's session, when not cached): 503.
    """
    errors = {}
    parameters = {parameter["name"]: parameter for parameter in operation.get("parameters", ())}
    if "requestBody" in operation:
        errors["400"] = ERROR_STATUSES["400"]
        errors["413"] = ERROR_STATUSES["413"]
        errors["415"] = ERROR_STATUSES["415"]
    elif any(p["in"] == "query" and name not in PAGING for name, p in parameters.items()):
        # A filter's value that cannot be read (a NUL character, a malformed id) is a 400 too; the
        # paging parameters never are (a bad cursor is a 404, a bad page size the default).
        errors["400"] = ERROR_STATUSES["400"]
    if any(requirement for requirement in operation.get("security", ())):
        errors["401"] = ERROR_STATUSES["401"]
    refusals = _refusals(view)
    if refusals:
        errors["403"] = " ".join(refusals)
    not_found = [NOT_FOUND["object"]] if any(p["in"] == "path" for p in parameters.values()) else []
    if "cursor" in parameters:
        not_found.append(NOT_FOUND["cursor"])
    if not_found:
        errors["404"] = " Or: ".join(not_found)
    throttles = _throttle_settings(view)
    if throttles:
        errors["429"] = f"More requests than {', '.join(throttles)} allows (`Retry-After`, in seconds)."
    errors["503"] = ERROR_STATUSES["503"]
    return errors


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Describe each API operation (`describe_operations`) and list the errors it can answer, and only those.

    An error the view documents itself is kept as it says (an upload's 415, a provider's 502), with
    the shared body when it gave none; `config/schema_text.py` adds what a service can answer.
    """
    from .schema_text import OPERATIONS

    describe_operations(result, generator, request, public)
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    schemas.setdefault("ValidationError", VALIDATION_ERROR_SCHEMA)
    views = _views(generator)
    for path, item in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status_code, documented in responses.items():
                # An error a view documents by its description alone (a 502, say) has the shared body.
                if status_code[0] in "45" and "content" not in documented:
                    documented["content"] = _error_content(status_code)
                if status_code in {"429", "503"}:
                    documented.setdefault("headers", RETRY_AFTER)
            text = OPERATIONS.get(f"{method.upper()} {path}")
            errors = implied_errors(operation, views.get((method, path)))
            errors.update(text.errors if text else {})
            for status_code, description in errors.items():
                if status_code in responses:
                    continue
                answer: dict[str, Any] = {"description": description, "content": _error_content(status_code)}
                if status_code in {"429", "503"}:
                    answer["headers"] = RETRY_AFTER
                responses[status_code] = answer
            operation["responses"] = dict(sorted(responses.items()))
    return result


def describe_operations(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Each operation's summary and description, from `config/schema_text.py`.

    A viewset's docstring describes the resource, so drf-spectacular gives it to every operation of
    the viewset; the table describes each operation by itself. An operation it does not name keeps
    what its view says.
    """
    from .schema_text import OPERATIONS

    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            text = OPERATIONS.get(f"{method.upper()} {path}")
            if method in METHODS and text is not None:
                operation["summary"] = text.summary
                operation["description"] = text.description
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
