"""`/` and the admin's "View site" link lead somewhere useful (issue 21)."""

from __future__ import annotations

import pytest


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


@pytest.mark.django_db
def test_the_admins_view_site_link_is_the_same_place(client, admin_user, settings):
    settings.PRODUCTION = False
    client.force_login(admin_user)
    page = client.get("/admin/")
    assert page.status_code == 200
    assert 'href="/api/docs/"' in page.content.decode()


@pytest.mark.django_db
def test_the_admin_shows_no_view_site_link_when_there_is_nowhere_to_go(client, admin_user, settings):
    settings.PRODUCTION = True
    settings.SOCIAL_AUTH_FRONTEND_URL = "/"
    client.force_login(admin_user)
    page = client.get("/admin/")
    assert page.status_code == 200
    assert "View site" not in page.content.decode()
