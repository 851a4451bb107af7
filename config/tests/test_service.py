"""Service endpoints: schema, docs, and the JSON error pages outside DRF (health: core/tests/test_health.py)."""

from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_openapi_schema_and_docs(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    document = schema.json()
    for path in ("/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/users/me", "/api/v1/auth/sessions"):
        assert path in document["paths"], path
    assert document["components"]["securitySchemes"]["jwtAuth"]["scheme"] == "bearer"
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


@pytest.mark.django_db
def test_unknown_path_is_json_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


@pytest.mark.django_db
def test_admin_404_stays_html(admin_user, client):
    client.force_login(admin_user)
    response = client.get("/admin/accounts/user/00000000-0000-0000-0000-000000000000/change/x")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_the_api_goes_around_the_admins_session_middleware(auth_client, client, admin_user):
    """Sessions, the auth user and messages serve the admin only; both sides keep frame options."""
    api = auth_client.get("/api/v1/users/me")
    assert api.status_code == 200
    assert "sessionid" not in api.cookies
    assert api["X-Frame-Options"] == "DENY"
    client.force_login(admin_user)  # the admin still runs on sessions
    admin_page = client.get("/admin/")
    assert admin_page.status_code == 200
    assert admin_page["X-Frame-Options"] == "DENY"
