"""Response headers API.md → Conventions asks for, on every endpoint.

- Responses that carry tokens or personal data are `Cache-Control: no-store`:
  every `/api/` answer is, unless its view chose a policy itself.
- A 401 carries `WWW-Authenticate: Bearer`, whichever layer answered it.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from testing.endpoints import all_endpoints

pytestmark = pytest.mark.django_db


def no_store(response) -> bool:
    """`no-store` among the directives (a view may add its own, like Django's `never_cache`)."""
    directives = {d.strip().lower() for d in response.get("Cache-Control", "").split(",")}
    return "no-store" in directives


def assert_no_store(response) -> None:
    assert no_store(response), (response.status_code, response.get("Cache-Control"))


def assert_bearer_challenge(response) -> None:
    assert response.status_code == 401
    assert response.get("WWW-Authenticate", "").startswith("Bearer"), dict(response.headers)


def test_login_and_refresh_answers_are_not_stored(api_client, user, password):
    login = api_client.post(
        "/api/v1/auth/login", {"username": user.username, "password": password}, format="json"
    )
    assert login.status_code == 200
    assert_no_store(login)
    form_login = api_client.post(
        "/api/v1/auth/login",
        f"grant_type=password&username={user.username}&password={password}",
        content_type="application/x-www-form-urlencoded",
    )
    assert form_login.status_code == 200
    assert_no_store(form_login)

    refresh = api_client.post("/api/v1/auth/refresh", {"refresh": login.json()["refresh"]}, format="json")
    assert refresh.status_code == 200
    assert_no_store(refresh)


def test_personal_data_is_not_stored(auth_client):
    for path in (
        "/api/v1/users/me",
        "/api/v1/users/me/export",
        "/api/v1/auth/sessions",
        "/api/v1/notifications",
    ):
        response = auth_client.get(path)
        assert response.status_code == 200, path
        assert_no_store(response)


def test_every_api_endpoint_answers_no_store_whatever_the_status(auth_client):
    """Covers endpoints added later (social login, profile data) without naming them."""
    for endpoint in all_endpoints():
        if not endpoint.is_api:
            continue
        for method in ("get", "post"):
            response = getattr(auth_client, method)(endpoint.path, {}, format="json")
            assert no_store(response), (
                method,
                endpoint.path,
                response.status_code,
                response.get("Cache-Control"),
            )


def test_the_public_keys_keep_their_own_cache_policy(api_client):
    response = api_client.get("/.well-known/jwks.json")
    assert response["Cache-Control"] == "public, max-age=300"


@pytest.mark.slow
def test_every_401_of_every_endpoint_carries_the_bearer_challenge():
    anonymous, bad_token = APIClient(), APIClient()
    bad_token.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    seen = 0
    for endpoint in all_endpoints():
        if endpoint.is_admin:
            continue
        for client in (anonymous, bad_token):
            for method in ("get", "post", "patch", "delete"):
                response = getattr(client, method)(endpoint.path, {}, format="json")
                if response.status_code == 401:
                    seen += 1
                    assert_bearer_challenge(response)
    assert seen > 20  # the protected endpoints, twice over


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/auth/login", {"username": "nobody", "password": "wrong"}),
        ("/api/v1/auth/refresh", {"refresh": "not-a-token"}),
        ("/api/v1/auth/verify", {"token": "not-a-token"}),
        ("/api/v1/auth/restore", {"username": "nobody", "password": "wrong"}),
    ],
)
def test_token_endpoints_refusing_credentials_carry_the_bearer_challenge(api_client, path, body):
    """These views have no authenticator, so DRF itself would send no challenge."""
    response = api_client.post(path, body, format="json")
    assert_bearer_challenge(response)
    assert_no_store(response)
