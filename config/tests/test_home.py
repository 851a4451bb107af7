"""`/` and the admin's "View site" link lead somewhere useful (issue 21)."""

from __future__ import annotations


def test_root_leads_to_the_docs_in_development(client, settings):
    settings.PRODUCTION = False
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/api/docs/"
    assert client.get(response["Location"]).status_code == 200


def test_root_leads_to_the_frontend_in_production(client, settings):
    settings.PRODUCTION = True
    settings.SOCIAL_AUTH_FRONTEND_URL = "https://app.example.com/after-login#x"
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "https://app.example.com/after-login"


def test_root_is_a_json_404_in_production_without_a_frontend(client, settings):
    settings.PRODUCTION = True
    settings.SOCIAL_AUTH_FRONTEND_URL = "/"
    response = client.get("/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
