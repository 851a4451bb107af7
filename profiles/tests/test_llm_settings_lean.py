"""`GET /profile/llm-settings` takes the lean dispatch (accounts/hot_path_views.py) and answers
exactly what its DRF view answers: status, every header, the body's bytes.

Each request is made through the project's URLs (lean) and through `accounts.tests.drf_urls`
(the same path on the plain DRF view), as `accounts/tests/test_hot_path_views.py` does for
`/users/me`. The rules every lean GET keeps (refusals, logout, the cases left to DRF, no query
when warm) are tested there for this endpoint too (`LEAN_GETS`).
"""

from __future__ import annotations

from typing import Any

import pytest

from accounts.tests.test_hot_path_views import both, same
from profiles.views import llm_settings as views

SETTINGS = "/api/v1/profile/llm-settings"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]

CHANGE = {"rag": {"provider": "yandexgpt", "model": "yandexgpt-lite", "temperature": 0.1, "max_tokens": 2000}}


def test_the_defaults_are_the_drf_views_answer_byte_for_byte(auth_client):
    lean_response, drf_response = both(lambda: auth_client.get(SETTINGS))

    assert lean_response.status_code == 200
    same(lean_response, drf_response)
    assert lean_response["Allow"] == "GET, PUT, PATCH, HEAD, OPTIONS"
    assert "no-store" in lean_response["Cache-Control"]


def test_changed_settings_are_the_drf_views_answer_byte_for_byte(auth_client):
    changed = auth_client.patch(SETTINGS, CHANGE, format="json")
    assert changed.status_code == 200

    lean_response, drf_response = both(lambda: auth_client.get(SETTINGS))

    same(lean_response, drf_response)
    assert lean_response.json() == changed.json()
    assert lean_response.json()["rag"]["model"] == "yandexgpt-lite"


def test_get_is_answered_by_the_lean_path(auth_client, monkeypatch):
    """With the DRF view's GET broken, the lean route still answers: DRF's cycle is not run."""

    def broken(self: Any, request: Any) -> Any:
        raise AssertionError("DRF's LLMSettingsView.get ran")

    monkeypatch.setattr(views.LLMSettingsView, "get", broken)

    response = auth_client.get(SETTINGS)

    assert response.status_code == 200
    assert set(response.json()) >= {"agent", "rag", "test_generator"}


def test_writes_still_go_through_drf(auth_client, monkeypatch):
    monkeypatch.setattr(views.LLMSettingsView, "get", lambda self, request: None)  # not on the way

    assert auth_client.patch(SETTINGS, CHANGE, format="json").status_code == 200
    assert auth_client.put(SETTINGS, {"agent": "x"}, format="json").status_code == 400


def test_the_route_is_the_lean_view_of_the_drf_view():
    assert views.llm_settings_view.cls is views.LLMSettingsView  # type: ignore[attr-defined]
