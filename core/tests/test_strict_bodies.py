"""Strict request bodies and clean errors (API.md → Conventions; issue 21).

- every write operation of the OpenAPI schema answers an unknown body field with a 400 naming it,
  at the top of the body and inside its nested objects;
- a read-only field that GET returns may be sent back unchanged (and is ignored), not changed;
- a number field takes a number, not a boolean.
The errors that are not about fields are in test_clean_errors.py.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from rest_framework import serializers as drf_serializers

from accounts import services as account_services
from accounts.models import User
from accounts.tests.factories import UserFactory
from accounts.tests.support import PASSWORD, bearer_for
from core.serializers import READ_ONLY_FIELD, UNKNOWN_FIELD, Serializer, StrictMixin
from profiles.models import ChatSession

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]

ME = "/api/v1/users/me"
EXTRA = "zz_unknown"
FORM = "application/x-www-form-urlencoded"
WRITE_METHODS = ("post", "put", "patch")


# --- bodies made from the schema ------------------------------------------------------------

#: Values for fields whose shape a generic sample would not pass (formats the schema does not say).
NAMED = {
    "username": "zz_walker",
    "password": PASSWORD,
    "new_password": "another long pass phrase 7",
    "old_password": PASSWORD,
    "email": "walker@example.com",
    "role": "moderator",
}

#: Bodies the schema's required fields alone do not make valid (the rule is "one of these").
WHOLE_BODIES = {
    "POST /api/v1/resumes": {"text": "A resume."},
    "POST /api/v1/requirements": {"text": "Requirements."},
    "POST /api/v1/auth/social/yandex": {"access_token": "a-yandex-token"},
    "POST /api/v1/auth/mfa/verify": {"mfa_token": "a-token", "code": "123456"},  # one of code, recovery_code
}


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in node:
            node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
        elif len(node.get("allOf", ())) == 1:
            node = node["allOf"][0]
        else:
            return node


def _sample(schema: dict[str, Any], node: dict[str, Any], name: str = "", *, optional: bool = False) -> Any:
    """A valid-looking value for a schema node: an object's required properties (all with `optional`)."""
    node = _resolve(schema, node)
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "object":
        required = set(node.get("required", ()))
        properties = node.get("properties", {})
        return {
            key: _sample(schema, value, key)
            for key, value in properties.items()
            if key in required or (optional and "properties" in _resolve(schema, value))
        }
    if kind == "array":
        return []
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        low, high = node.get("minimum", 1), node.get("maximum", 10**6)
        return min(max(low, 1), high)
    if kind == "string":
        if name in NAMED:
            return NAMED[name]
        return {
            "uuid": str(uuid.uuid4()),
            "email": "walker@example.com",
            "date-time": "2030-01-01T00:00:00Z",
            "uri": "https://example.com/",
        }.get(node.get("format", ""), "sample")
    return "sample"


def _json_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Each POST / PUT / PATCH of the API whose request body may be JSON, with the body's schema."""
    found = []
    for path, item in schema["paths"].items():
        for method in WRITE_METHODS:
            body = item.get(method, {}).get("requestBody", {}).get("content", {}).get("application/json")
            if path.startswith("/api/v1/") and body:
                found.append((method, path, body["schema"]))
    return found


# --- the objects a path names ---------------------------------------------------------------


def _chat_session(user: Any, admin: Any) -> str:
    return str(ChatSession.objects.create(user=user, external_id="walk").id)


def _role_request(user: Any, admin: Any) -> str:
    return str(account_services.role_request_create(user_id=UserFactory().id, role="moderator").id)


def _another_user(user: Any, admin: Any) -> str:
    return str(UserFactory().id)


#: A live object for each path with an `{id}` (else the answer would be a 404, which proves nothing).
OBJECTS: dict[str, Callable[[Any, Any], str]] = {
    "/api/v1/chat-sessions/{id}": _chat_session,
    "/api/v1/role-requests/{id}/approve": _role_request,
    "/api/v1/role-requests/{id}/reject": _role_request,
    "/api/v1/users/{id}": _another_user,
}


class Walker:
    """Sends a body to an operation as a user, or as an administrator where a user gets 403."""

    def __init__(self, user: Any, admin: Any) -> None:
        self.user, self.admin = user, admin
        self.clients = {"user": bearer_for(user), "admin": bearer_for(admin)}
        self.as_admin: set[str] = set()

    def send(self, method: str, path: str, body: Any) -> Any:
        concrete = path
        if "{" in path:
            assert path in OBJECTS, f"{method.upper()} {path}: say in OBJECTS how to make the object it names"
            concrete = path.replace("{id}", OBJECTS[path](self.user, self.admin))
        response = None
        for who in ("user", "admin"):
            cache.clear()  # the per-address limits would answer 429 before the body is read
            response = getattr(self.clients[who], method)(concrete, body, format="json")
            if response.status_code != 403:
                if who == "admin":
                    self.as_admin.add(f"{method.upper()} {path}")
                break
        return response


@pytest.fixture
def walker(user: Any, admin_user: Any) -> Walker:
    return Walker(user, admin_user)


def test_every_write_operation_names_an_unknown_field(openapi_schema, walker):
    operations = _json_operations(openapi_schema)
    assert len(operations) >= 25, "the walk found too few operations to be the schema's"
    wrong = []
    for method, path, body_schema in operations:
        name = f"{method.upper()} {path}"
        body = {**WHOLE_BODIES.get(name, _sample(openapi_schema, body_schema)), EXTRA: 1}
        response = walker.send(method, path, body)
        answer = response.json() if response.get("Content-Type") == "application/json" else response.content
        # Exactly this error: the rest of the body was valid, so the field is what was refused.
        if (response.status_code, answer) != (400, {EXTRA: [UNKNOWN_FIELD]}):
            wrong.append(f"{name}: {response.status_code} {answer}")
    assert not wrong, "\n".join(wrong)
    # The administrators' operations were reached as an administrator (a user's 403 proves nothing).
    assert {
        "POST /api/v1/users",
        "PATCH /api/v1/users/{id}",
        "POST /api/v1/role-requests/{id}/approve",
        "POST /api/v1/notifications/broadcast",
    } <= walker.as_admin


def _with_extra_inside(schema: dict[str, Any], body: dict[str, Any], body_schema: dict[str, Any]) -> bool:
    """Put the extra field into each nested object of the body; whether there was one."""
    properties = _resolve(schema, body_schema).get("properties", {})
    nested = False
    for key, value in body.items():
        if isinstance(value, dict) and "properties" in _resolve(schema, properties[key]):
            value[EXTRA] = 1
            nested = True
    return nested


def test_every_nested_object_of_a_body_names_an_unknown_field(openapi_schema, walker):
    reached = []
    for method, path, body_schema in _json_operations(openapi_schema):
        body = _sample(openapi_schema, body_schema, optional=True)
        if not _with_extra_inside(openapi_schema, body, body_schema):
            continue
        response = walker.send(method, path, body)
        reached.append(f"{method.upper()} {path}")
        assert response.status_code == 400, (method, path, response.content)
        assert EXTRA in json.dumps(response.json()), (method, path, response.json())
        assert UNKNOWN_FIELD in json.dumps(response.json()), (method, path, response.json())
    # LLM settings (PUT and PATCH) and the notification preferences have nested objects.
    assert {
        "PUT /api/v1/profile/llm-settings",
        "PATCH /api/v1/profile/llm-settings",
        "PATCH /api/v1/notifications/preferences",
    } <= set(reached)


def test_the_schema_says_request_bodies_take_no_other_field(openapi_schema):
    checked = 0
    for method, path, body_schema in _json_operations(openapi_schema):
        pending = [body_schema]
        while pending:  # the body and every object nested in it
            node = _resolve(openapi_schema, pending.pop())
            if "properties" in node:
                assert node.get("additionalProperties") is False, (method, path, node)
                pending.extend(node["properties"].values())
                checked += 1
    assert checked > 25


def test_every_serializer_of_the_project_derives_from_the_strict_base():
    for app in ("accounts", "profiles", "notifications", "config"):
        package = importlib.import_module(app)
        for module in pkgutil.walk_packages(package.__path__, f"{app}."):
            if ".tests" not in module.name and ".migrations" not in module.name:
                importlib.import_module(module.name)
    loose = []
    pending: list[type] = [drf_serializers.BaseSerializer]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        ours = cls.__module__.split(".")[0] in {"accounts", "profiles", "notifications", "config"}
        if ours and ".tests" not in cls.__module__ and not issubclass(cls, StrictMixin):
            loose.append(f"{cls.__module__}.{cls.__qualname__}")
    assert not loose, f"derive these from core.serializers: {loose}"


# --- the fields of accounts -----------------------------------------------------------------


def _register_body(**extra: Any) -> dict[str, Any]:
    return {"username": "newcomer", "email": "newcomer@example.com", "password": PASSWORD, **extra}


@pytest.mark.parametrize(
    ("field", "value"), [("roles", ["admin"]), ("is_admin", True), ("is_staff", True), ("is_superuser", True)]
)
def test_register_refuses_a_privilege_field_by_name(api_client, field, value):
    response = api_client.post("/api/v1/auth/register", _register_body(**{field: value}), format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert list(response.json()) == [field]
    assert not User.objects.filter(username="newcomer").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("roles", ["user", "admin"], READ_ONLY_FIELD),
        ("is_admin", True, READ_ONLY_FIELD),
        ("id", str(uuid.uuid4()), READ_ONLY_FIELD),
        ("is_staff", True, UNKNOWN_FIELD),
        ("fullname", "Typo Name", UNKNOWN_FIELD),
    ],
)
def test_patch_me_refuses_a_field_it_does_not_take(auth_client, user, field, value, message):
    before = auth_client.get(ME).json()

    response = auth_client.patch(ME, {"full_name": "Changed", field: value}, format="json")

    assert (response.status_code, response.json()) == (400, {field: [message]})
    user.refresh_from_db()
    assert (user.full_name, user.is_staff, user.roles) == (before["full_name"], False, ["user"])


def test_what_get_users_me_answers_may_be_sent_back_to_patch(auth_client, user):
    body = auth_client.get(ME).json()

    response = auth_client.patch(ME, {**body, "full_name": "Sent Back"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {**body, "full_name": "Sent Back", "updated_at": response.json()["updated_at"]}


def test_an_administrator_may_send_back_what_get_users_id_answers(admin_client):
    target = UserFactory(roles=["user", "moderator"])
    body = admin_client.get(f"/api/v1/users/{target.id}").json()

    response = admin_client.patch(
        f"/api/v1/users/{target.id}", {**body, "full_name": "Read Back"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["full_name"] == "Read Back"
    changed = admin_client.patch(
        f"/api/v1/users/{target.id}", {**response.json(), "is_superuser": True}, format="json"
    )

    assert (changed.status_code, changed.json()) == (400, {"is_superuser": [READ_ONLY_FIELD]})
    target.refresh_from_db()
    assert not target.is_superuser


def test_a_chat_session_read_may_be_sent_back(auth_client):
    created = auth_client.post("/api/v1/chat-sessions", {"external_id": "c-1"}, format="json").json()
    path = f"/api/v1/chat-sessions/{created['id']}"

    same = auth_client.patch(path, {**created, "title": "Renamed"}, format="json")
    other = auth_client.patch(path, {"created_at": "2001-01-01T00:00:00Z"}, format="json")

    assert same.status_code == 200, same.content
    assert same.json()["title"] == "Renamed"
    assert (other.status_code, other.json()) == (400, {"created_at": [READ_ONLY_FIELD]})


def test_an_unknown_field_of_an_upload_is_named_too(auth_client):
    response = auth_client.post(
        "/api/v1/resumes", {"title": "CV", "text": "A resume.", "titel": "typo"}, format="multipart"
    )

    assert (response.status_code, response.json()) == (400, {"titel": [UNKNOWN_FIELD]})


def test_the_oauth2_password_form_is_taken_whole(api_client, user):
    form = {
        "grant_type": "password",
        "username": user.username,
        "password": PASSWORD,
        "scope": "",
        "client_id": "swagger-ui",
        "client_secret": "",
    }

    response = api_client.post("/api/v1/auth/login", urlencode(form), content_type=FORM)

    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "Bearer"


# --- LLM settings: nested, read back, and numbers -----------------------------------------------

SETTINGS = "/api/v1/profile/llm-settings"


def test_an_unknown_field_of_a_purpose_is_named(auth_client):
    body = auth_client.get(SETTINGS).json()
    body["agent"]["top_p"] = 0.9

    response = auth_client.put(SETTINGS, body, format="json")
    patched = auth_client.patch(SETTINGS, {"rag": {"top_p": 0.9}}, format="json")

    assert (response.status_code, response.json()) == (400, {"agent.top_p": [UNKNOWN_FIELD]})
    assert (patched.status_code, patched.json()) == (400, {"rag.top_p": [UNKNOWN_FIELD]})


def test_llm_settings_read_may_be_sent_back_but_stale_not_changed(auth_client):
    body = auth_client.get(SETTINGS).json()

    same = auth_client.put(SETTINGS, body, format="json")
    changed = auth_client.put(SETTINGS, {**body, "stale": ["rag"]}, format="json")

    assert (same.status_code, same.json()) == (200, body)
    assert (changed.status_code, changed.json()) == (400, {"stale": [READ_ONLY_FIELD]})


@pytest.mark.parametrize("field", ["temperature", "max_tokens"])
def test_a_boolean_is_not_a_number_in_the_llm_settings(auth_client, field):
    body = auth_client.get(SETTINGS).json()
    body.pop("stale")
    body["agent"][field] = True

    put = auth_client.put(SETTINGS, body, format="json")
    patch = auth_client.patch(SETTINGS, {"rag": {field: False}}, format="json")

    assert put.status_code == 400
    assert list(put.json()) == [f"agent.{field}"]
    assert patch.status_code == 400
    assert list(patch.json()) == [f"rag.{field}"]
    assert auth_client.get(SETTINGS).json()["agent"][field] is not True


@pytest.mark.parametrize("field", ["score", "max_score"])
def test_a_boolean_is_not_a_number_in_a_quiz_result(auth_client, field):
    body = {"quiz_id": "q1", "topic": "python", "score": 3, "max_score": 5, field: True}

    response = auth_client.post("/api/v1/quiz-results", body, format="json")

    assert (response.status_code, list(response.json())) == (400, [field])
    assert response.json()[field] == ["A valid number is required."]


def test_the_base_serializer_refuses_booleans_for_every_number_field():
    class Numbers(Serializer):
        whole = drf_serializers.IntegerField(required=False)
        real = drf_serializers.FloatField(required=False)
        exact = drf_serializers.DecimalField(max_digits=5, decimal_places=2, required=False)
        many = drf_serializers.ListField(child=drf_serializers.IntegerField(), required=False)

    refused = Numbers(data={"whole": True, "real": False, "exact": True, "many": [1, True]})
    taken = Numbers(data={"whole": 1, "real": 1.5, "exact": "2.50", "many": [1, 2]})

    assert not refused.is_valid()
    assert set(refused.errors) == {"whole", "real", "exact", "many"}
    assert refused.errors["many"] == {1: ["A valid integer is required."]}
    assert taken.is_valid(), taken.errors


def test_a_value_sent_back_must_be_the_same_json_value():
    class Thing(Serializer):
        name = drf_serializers.CharField()

    read = {"id": "x", "ratio": 1.0, "flag": True, "tags": ["a"], "nested": {"n": 1}}
    same = Thing(
        data={"name": "n", "ratio": 1, "flag": True, "tags": ["a"], "nested": {"n": 1.0}}, current=read
    )
    other = Thing(data={"name": "n", "flag": 1, "tags": ["a", "b"]}, current=read)

    assert same.is_valid(), same.errors
    assert same.validated_data == {"name": "n"}
    assert not other.is_valid()
    assert other.errors == {"flag": [READ_ONLY_FIELD], "tags": [READ_ONLY_FIELD]}
