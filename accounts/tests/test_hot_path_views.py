"""The lean endpoints (`accounts/hot_path_views.py`) answer exactly what their DRF views answer.

Each request is made twice, through the project's URLs (lean) and through
`drf_urls` (the same paths on the plain DRF views); status, every header and
the body bytes must match. The bodies are also pinned against the serializers.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from accounts import hot_path_views, views
from accounts.models import User
from accounts.serializers import UserSerializer, VerifiedSerializer
from accounts.tests.support import bearer

ME = "/api/v1/users/me"
VERIFY = "/api/v1/auth/verify"
LOGOUT = "/api/v1/auth/logout"
LLM_SETTINGS = "/api/v1/profile/llm-settings"
#: The lean GETs: the rules every one of them keeps are tested for each (refusals, logout, the cases
#: left to DRF, no query when warm); profiles/tests/test_llm_settings_lean.py has the rest of its own.
LEAN_GETS = [ME, LLM_SETTINGS]
DRF_URLS = "accounts.tests.drf_urls"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


def both(call: Any) -> tuple[Any, Any]:
    """The response through the lean URLs, then through the DRF views."""
    lean_response = call()
    with override_settings(ROOT_URLCONF=DRF_URLS):
        drf_response = call()
    return lean_response, drf_response


#: Headers whose value is new on every response (both must still carry them).
PER_REQUEST_HEADERS = {"X-Request-ID"}


def same(lean_response: Any, drf_response: Any) -> None:
    assert lean_response.status_code == drf_response.status_code
    lean_headers, drf_headers = dict(lean_response.headers), dict(drf_response.headers)
    for name in PER_REQUEST_HEADERS & (set(lean_headers) | set(drf_headers)):
        assert lean_headers.pop(name)
        assert drf_headers.pop(name)
    assert lean_headers == drf_headers
    assert lean_response.content == drf_response.content


def rendered(data: Any) -> bytes:
    return JSONRenderer().render(data)


# --- GET /users/me --------------------------------------------------------------------------


def test_me_is_the_drf_views_answer_byte_for_byte(auth_client):
    lean_response, drf_response = both(lambda: auth_client.get(ME))

    assert lean_response.status_code == 200
    same(lean_response, drf_response)
    assert lean_response["Content-Type"] == "application/json"
    assert lean_response["Allow"] == "GET, PATCH, DELETE, HEAD, OPTIONS"
    assert "no-store" in lean_response["Cache-Control"]  # API.md: personal data; the API-wide middleware's


def test_me_is_the_serializers_answer(auth_client, user):
    user = User.objects.prefetch_related("groups").get(id=user.id)

    response = auth_client.get(ME)

    assert response.content == rendered(UserSerializer(user).data)


def test_me_is_answered_by_the_lean_path(auth_client, monkeypatch):
    """With the DRF view's GET broken, the lean route still answers: DRF's cycle is not run."""

    def broken(self: Any, request: Any) -> Any:
        raise AssertionError("DRF's MeViewSet.retrieve ran")

    monkeypatch.setattr(views.MeViewSet, "retrieve", broken)

    response = auth_client.get(ME)

    assert response.status_code == 200
    assert response.json()["username"]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer not-a-token",
        "Bearer two parts",
        "Token abc",
        "bearer {access}",  # the scheme is case-sensitive in SimpleJWT
    ],
)
@pytest.mark.parametrize("path", LEAN_GETS)
def test_refusals_are_the_drf_views_refusals(auth_client, authorization, path):
    header = authorization.format(access=auth_client.tokens["access"]) if authorization else None
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)

    lean_response, drf_response = both(lambda: client.get(path))

    assert lean_response.status_code == 401
    assert lean_response["WWW-Authenticate"].startswith("Bearer")
    same(lean_response, drf_response)


@pytest.mark.parametrize("path", LEAN_GETS)
def test_after_logout_it_is_the_drf_views_401(auth_client, path):
    assert auth_client.get(path).status_code == 200  # the token is in the verified map now
    assert auth_client.post(LOGOUT).status_code == 204

    lean_response, drf_response = both(lambda: auth_client.get(path))

    assert lean_response.status_code == 401
    assert lean_response.json()["code"] == "session_revoked"
    same(lean_response, drf_response)


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("get", {"HTTP_ACCEPT": "text/html"}),  # 406 from DRF's negotiation
        ("get", {"HTTP_ACCEPT": "application/json; indent=4"}),
        ("get", {"QUERY_STRING": "format=json"}),
        ("head", {}),
        ("options", {}),
    ],
)
@pytest.mark.parametrize("path", LEAN_GETS)
def test_cases_left_to_drf_are_drf_answers(auth_client, method, extra, path):
    lean_response, drf_response = both(lambda: getattr(auth_client, method)(path, **extra))

    same(lean_response, drf_response)


@pytest.mark.parametrize("path", LEAN_GETS)
def test_the_lean_path_costs_no_query_when_warm(auth_client, django_assert_num_queries, path):
    assert auth_client.get(path).status_code == 200

    with django_assert_num_queries(0):
        assert auth_client.get(path).status_code == 200


# --- POST /auth/verify ---------------------------------------------------------------------


def verify(body: Any, **extra: Any) -> Any:
    return APIClient().post(VERIFY, body, format="json", **extra)


def test_verify_is_the_drf_views_answer_and_the_serializers(auth_client):
    access = auth_client.tokens["access"]

    lean_response, drf_response = both(lambda: verify({"token": access}))

    assert lean_response.status_code == 200
    same(lean_response, drf_response)
    assert "no-store" in lean_response["Cache-Control"]
    body = lean_response.json()
    assert lean_response.content == rendered(VerifiedSerializer(body).data)
    assert body["session_id"] == auth_client.tokens["session_id"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": ""},
        {"token": "not-a-token"},
        {"token": 12345},
        {"token": None},
        {"token": "x" * 5000},
        ["token"],
    ],
)
def test_verify_refusals_are_the_drf_views_refusals(body):
    lean_response, drf_response = both(lambda: verify(body))

    assert lean_response.status_code in {400, 401}
    same(lean_response, drf_response)


def test_verify_of_a_padded_token_is_the_drf_views_answer(auth_client):
    """DRF's CharField trims whitespace; the lean path leaves that to DRF."""
    padded = f" {auth_client.tokens['access']} "

    lean_response, drf_response = both(lambda: verify({"token": padded}))

    assert lean_response.status_code == 200
    same(lean_response, drf_response)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"token": NaN}', "application/json"),
        (b"{not json", "application/json"),
        (b"token=abc", "application/x-www-form-urlencoded"),
    ],
)
def test_verify_bodies_drf_refuses_are_refused_alike(content, content_type):
    lean_response, drf_response = both(lambda: APIClient().generic("POST", VERIFY, content, content_type))

    assert lean_response.status_code in {400, 401, 415}
    same(lean_response, drf_response)


def test_verify_of_a_revoked_session_is_the_drf_views_401(auth_client):
    access = auth_client.tokens["access"]
    assert verify({"token": access}).status_code == 200  # the token is in the verified map now
    assert auth_client.post(LOGOUT).status_code == 204

    lean_response, drf_response = both(lambda: verify({"token": access}))

    assert lean_response.status_code == 401
    same(lean_response, drf_response)


# --- the schema ----------------------------------------------------------------------------


def _paths(urlconf: str) -> dict[str, Any]:
    with override_settings(ROOT_URLCONF=urlconf):
        schema = SchemaGenerator().get_schema(request=None, public=True)
    return {path: schema["paths"][path] for path in (ME, VERIFY, LLM_SETTINGS)}


def test_the_schema_documents_the_lean_endpoints_as_their_drf_views():
    lean_paths = _paths("config.urls")

    assert lean_paths == _paths(DRF_URLS)
    assert set(lean_paths[ME]) == {"get", "patch", "delete"}
    assert lean_paths[ME]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/User"
    }
    assert "post" in lean_paths[VERIFY]
    assert set(lean_paths[LLM_SETTINGS]) == {"get", "put", "patch"}


# --- the mechanism -------------------------------------------------------------------------


def test_a_lean_view_keeps_the_drf_views_attributes():
    assert hot_path_views.me_view.cls is views.MeViewSet  # type: ignore[attr-defined]
    assert hot_path_views.verify_view.csrf_exempt is True  # type: ignore[attr-defined]


def test_the_lean_caller_is_the_request_user(auth_client, rf):
    request = rf.get(ME, HTTP_AUTHORIZATION=f"Bearer {auth_client.tokens['access']}")

    caller = hot_path_views.bearer_caller(request)

    assert caller is not None
    assert request.user is caller
    assert bearer(auth_client.tokens["access"]).get(ME).json()["id"] == caller.id
