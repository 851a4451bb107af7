"""GET /roles, and the zero-query pin on a second authenticated endpoint."""

from __future__ import annotations

import pytest

from accounts.models import Role


@pytest.mark.django_db
def test_roles_lists_every_role_with_a_description(auth_client):
    response = auth_client.get("/api/v1/roles")
    assert response.status_code == 200
    names = [role["name"] for role in response.json()]
    assert names == ["admin", "moderator", "user"]
    assert all(role["description"] for role in response.json())


@pytest.mark.django_db
def test_roles_needs_authentication(api_client):
    assert api_client.get("/api/v1/roles").status_code == 401


@pytest.mark.django_db
def test_roles_with_a_warm_cache_costs_no_query(auth_client, django_assert_num_queries):
    auth_client.get("/api/v1/roles")
    with django_assert_num_queries(0):
        assert auth_client.get("/api/v1/roles").status_code == 200


@pytest.mark.django_db
def test_a_changed_description_shows_at_once(
    auth_client, client, admin_user, django_capture_on_commit_callbacks
):
    auth_client.get("/api/v1/roles")
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    role = Role.objects.get(group__name="moderator")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/admin/accounts/role/{role.pk}/change/", {"group": role.pk, "description": "Keeps the peace."}
        )
    assert response.status_code == 302
    descriptions = {r["name"]: r["description"] for r in auth_client.get("/api/v1/roles").json()}
    assert descriptions["moderator"] == "Keeps the peace."
