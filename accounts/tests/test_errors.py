"""Every error is JSON (API.md, "Conventions"): never an HTML page, never a traceback."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import User

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"
STRONG = "correct horse battery staple"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


def assert_json_error(response, status: int) -> dict:
    """The response is a JSON error with this status; returns the body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    text = response.content.decode()
    assert "<html" not in text.lower()
    assert "Traceback" not in text
    return response.json()


def assert_detail_and_code(body: dict) -> None:
    assert set(body) == {"detail", "code"}
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert isinstance(body["code"], str)
    assert body["code"]


def register_body(**fields) -> dict:
    return {"username": "alice", "email": "alice@example.com", "password": STRONG, **fields}


@pytest.mark.parametrize("path", [REGISTER, LOGIN, "/api/v1/auth/refresh", "/api/v1/auth/verify"])
def test_malformed_json_is_400_with_detail_and_code(path):
    response = APIClient().post(path, '{"username": "alice", ', content_type="application/json")

    assert_detail_and_code(assert_json_error(response, 400))


def test_malformed_json_on_an_authenticated_endpoint_is_400(auth_client, user):
    response = auth_client.patch(ME, "{not json", content_type="application/json")

    assert_detail_and_code(assert_json_error(response, 400))
    assert User.objects.get(id=user.id).username == user.username


def test_a_json_body_that_is_not_an_object_is_400():
    response = APIClient().post(REGISTER, "[1, 2, 3]", content_type="application/json")

    body = assert_json_error(response, 400)
    assert body
    assert not User.objects.exists()


@pytest.mark.parametrize("path", [REGISTER, LOGIN])
def test_an_unsupported_content_type_is_415(path):
    response = APIClient().post(path, "username=alice", content_type="text/plain")

    assert_detail_and_code(assert_json_error(response, 415))


def test_an_unsupported_content_type_on_me_is_415(auth_client):
    response = auth_client.patch(ME, "full_name=x", content_type="text/plain")

    assert_detail_and_code(assert_json_error(response, 415))


def test_an_over_long_username_is_a_field_error():
    response = APIClient().post(REGISTER, register_body(username="u" * 151), format="json")

    body = assert_json_error(response, 400)
    assert "username" in body
    assert not User.objects.exists()


def test_a_username_of_150_characters_is_fine():
    response = APIClient().post(REGISTER, register_body(username="u" * 150), format="json")

    assert response.status_code == 201, response.content


@pytest.mark.parametrize("field", ["username", "full_name", "email", "password"])
def test_a_nul_byte_is_a_field_error(field):
    value = {
        "username": "ali\x00ce",
        "full_name": "Al\x00ice",
        "email": "ali\x00ce@example.com",
        "password": STRONG + "\x00",
    }[field]

    response = APIClient().post(REGISTER, register_body(**{field: value}), format="json")

    body = assert_json_error(response, 400)
    assert field in body
    assert not User.objects.exists()


def test_a_nul_byte_in_the_login_name_is_400_not_500():
    response = APIClient().post(LOGIN, {"username": "ali\x00ce", "password": STRONG}, format="json")

    assert response.status_code in {400, 401}
    assert_json_error(response, response.status_code)


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing-here", "/api/v1/auth/nope", "/api/v2/users/me", "/no-such-page"]
)
def test_an_unknown_path_is_404_json(path):
    response = APIClient().get(path)

    assert_detail_and_code(assert_json_error(response, 404))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", LOGIN),
        ("get", REGISTER),
        ("put", LOGIN),
        ("get", "/api/v1/auth/refresh"),
        ("delete", "/api/v1/auth/verify"),
    ],
)
def test_a_wrong_method_is_405_json(method, path):
    response = getattr(APIClient(), method)(path)

    assert_detail_and_code(assert_json_error(response, 405))


def test_a_wrong_method_for_an_authenticated_caller_is_405_json(auth_client):
    response = auth_client.put(ME, {"full_name": "x"}, format="json")

    assert_detail_and_code(assert_json_error(response, 405))


def test_a_missing_token_is_401_with_www_authenticate():
    response = APIClient().get(ME)

    assert_detail_and_code(assert_json_error(response, 401))
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer garbage",
        "Bearer a.b.c",
        "Bearer",
        "Bearer one two",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
    ],
)
def test_a_bad_bearer_token_is_401_json(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(ME)

    assert_detail_and_code(assert_json_error(response, 401))
    assert "WWW-Authenticate" in response.headers


def test_another_auth_scheme_is_401_json():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic YWxpY2U6c2VjcmV0")

    response = client.get(ME)

    assert_detail_and_code(assert_json_error(response, 401))


def test_a_stale_token_does_not_break_the_public_endpoints(auth_client, user, password):
    """Login and register ignore the Authorization header: a dead token is no reason for a 401."""
    assert auth_client.post("/api/v1/auth/logout", {}, format="json").status_code == 204

    login = auth_client.post(LOGIN, {"username": user.username, "password": password}, format="json")
    register = auth_client.post(REGISTER, register_body(), format="json")

    assert login.status_code == 200
    assert register.status_code == 201


def test_forbidden_is_403_json(auth_client):
    assert_detail_and_code(assert_json_error(auth_client.get("/api/v1/users"), 403))


def test_validation_errors_are_field_lists():
    response = APIClient().post(REGISTER, {"username": "", "email": "x"}, format="json")

    body = assert_json_error(response, 400)
    assert {"username", "email", "password"} <= set(body)
    for messages in body.values():
        assert isinstance(messages, list)
        assert all(isinstance(message, str) for message in messages)
