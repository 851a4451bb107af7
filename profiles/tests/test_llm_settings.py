"""LLM settings per purpose: defaults, PUT/PATCH, catalogue checks, stale models, event, cache."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import UserFactory
from accounts.tests.support import CACHE_DOWN, bearer
from notifications.models import OutboxEvent
from profiles.llm_catalog import catalog
from profiles.models import LLMSetting
from profiles.selectors import llm_settings as llm_cache
from testing.processes import environment, last_json_line, python
from testing.races import run_at_once

from .support import events

SETTINGS = "/api/v1/profile/llm-settings"
PURPOSES = ["agent", "rag", "test_generator"]

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


def choice(provider: str, model: str, temperature: float = 0.3, max_tokens: int = 1000) -> dict[str, Any]:
    return {"provider": provider, "model": model, "temperature": temperature, "max_tokens": max_tokens}


def defaults() -> dict[str, Any]:
    return {purpose: catalog().defaults[purpose].as_dict() for purpose in PURPOSES}


FULL = {
    "agent": choice("anthropic", "claude-sonnet-4-5", 0.4, 8000),
    "rag": choice("yandexgpt", "yandexgpt-lite", 0.1, 2000),
    "test_generator": choice("gigachat", "GigaChat-2-Max", 1.5, 4000),
}


# --- reading and writing ------------------------------------------------------------------------


def test_a_user_who_never_chose_gets_the_catalogues_defaults(auth_client):
    response = auth_client.get(SETTINGS)

    assert response.status_code == 200
    assert response.json() == {**defaults(), "stale": []}


def test_put_replaces_every_purpose_and_is_read_back(auth_client, user):
    response = auth_client.put(SETTINGS, FULL, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {**FULL, "stale": []}
    assert auth_client.get(SETTINGS).json() == {**FULL, "stale": []}
    assert LLMSetting.objects.filter(user=user).count() == 3


def test_put_needs_every_purpose_whole(auth_client, user):
    response = auth_client.put(
        SETTINGS, {"agent": FULL["agent"], "rag": {"provider": "openai", "model": "gpt-4o"}}, format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["test_generator"] == ["This field is required."]
    assert set(body) >= {"rag.temperature", "rag.max_tokens"}
    assert not LLMSetting.objects.filter(user=user).exists()


def test_patch_changes_some_purposes_and_keeps_the_others(auth_client):
    auth_client.put(SETTINGS, FULL, format="json")

    response = auth_client.patch(SETTINGS, {"rag": {"temperature": 0.9}}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {**FULL, "rag": {**FULL["rag"], "temperature": 0.9}, "stale": []}


def test_patch_of_a_purpose_never_set_starts_from_the_default(auth_client, user):
    response = auth_client.patch(SETTINGS, {"agent": {"max_tokens": 123}}, format="json")

    assert response.status_code == 200
    assert response.json()["agent"] == {**defaults()["agent"], "max_tokens": 123}
    assert response.json()["rag"] == defaults()["rag"]
    assert list(LLMSetting.objects.filter(user=user).values_list("purpose", flat=True)) == ["agent"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"agent": {"provider": "nobody"}}, "agent.provider"),
        ({"agent": {"model": "no-such-model"}}, "agent.model"),
        # a real model, of another provider
        ({"rag": {"provider": "openai", "model": "claude-sonnet-4-5"}}, "rag.model"),
        ({"test_generator": {"temperature": 2.01}}, "test_generator.temperature"),
        ({"agent": {"temperature": -0.1}}, "agent.temperature"),
        ({"agent": {"temperature": "nan"}}, "agent.temperature"),
        ({"agent": {"max_tokens": 0}}, "agent.max_tokens"),
        ({"agent": {"max_tokens": "many"}}, "agent.max_tokens"),
        # above the model's output limit in the catalogue (gpt-4o: 16384)
        ({"agent": {"provider": "openai", "model": "gpt-4o", "max_tokens": 16385}}, "agent.max_tokens"),
        ({"agnet": {"max_tokens": 10}}, "agnet"),
        ({"agent": "gpt-4o"}, "agent"),
    ],
)
def test_invalid_settings_are_refused_naming_the_field(auth_client, user, body, field):
    response = auth_client.patch(SETTINGS, body, format="json")

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not LLMSetting.objects.filter(user=user).exists()
    assert events("llm_settings_changed") == []


def test_the_model_limit_itself_is_allowed(auth_client):
    body = {"agent": {"provider": "openai", "model": "gpt-4o", "max_tokens": 16384}}

    assert auth_client.patch(SETTINGS, body, format="json").status_code == 200


@pytest.mark.parametrize("body", [[], "x", None, 3, [{"agent": {}}]])
def test_a_body_that_is_not_an_object_is_a_400(auth_client, body):
    response = auth_client.put(SETTINGS, body, format="json")

    assert response.status_code == 400


def test_stale_sent_back_is_ignored_but_not_changed(auth_client):
    response = auth_client.put(SETTINGS, {**FULL, "stale": []}, format="json")
    changed = auth_client.put(SETTINGS, {**FULL, "stale": ["rag"]}, format="json")

    assert response.status_code == 200
    assert response.json()["stale"] == []
    assert (changed.status_code, changed.json()) == (400, {"stale": ["This field is read-only."]})


def test_settings_are_per_user(auth_client, admin_client):
    auth_client.put(SETTINGS, FULL, format="json")

    assert admin_client.get(SETTINGS).json() == {**defaults(), "stale": []}


def test_reading_needs_a_token(api_client):
    assert api_client.get(SETTINGS).status_code == 401


# --- a model that leaves the catalogue ------------------------------------------------------------


def test_a_model_removed_from_the_catalogue_answers_the_default_and_says_stale(
    auth_client, built_in_catalog, use_catalog
):
    auth_client.put(SETTINGS, FULL, format="json")
    del built_in_catalog["providers"]["yandexgpt"]["models"]["yandexgpt-lite"]
    use_catalog(built_in_catalog)

    response = auth_client.get(SETTINGS)

    assert response.status_code == 200
    assert response.json() == {**FULL, "rag": catalog().defaults["rag"].as_dict(), "stale": ["rag"]}


def test_a_provider_removed_from_the_catalogue_is_stale_too(auth_client, built_in_catalog, use_catalog):
    auth_client.put(SETTINGS, FULL, format="json")
    del built_in_catalog["providers"]["gigachat"]
    use_catalog(built_in_catalog)

    assert auth_client.get(SETTINGS).json()["stale"] == ["test_generator"]


@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_later_change_fixes_a_stale_purpose(auth_client, built_in_catalog, use_catalog, method):
    auth_client.put(SETTINGS, FULL, format="json")
    del built_in_catalog["providers"]["yandexgpt"]["models"]["yandexgpt-lite"]
    use_catalog(built_in_catalog)
    fixed = choice("yandexgpt", "yandexgpt", 0.2, 3000)
    # PATCH of a stale purpose starts from what it answers now: the default.
    body = (
        {**FULL, "rag": fixed}
        if method == "put"
        else {"rag": {"provider": "yandexgpt", "model": "yandexgpt"}}
    )

    response = getattr(auth_client, method)(SETTINGS, body, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["stale"] == []
    default = catalog().defaults["rag"].as_dict()
    expected = fixed if method == "put" else {**default, "provider": "yandexgpt", "model": "yandexgpt"}
    assert response.json()["rag"] == expected
    assert auth_client.get(SETTINGS).json()["stale"] == []


def test_a_lowered_output_limit_caps_the_saved_max_tokens(auth_client, built_in_catalog, use_catalog):
    auth_client.put(SETTINGS, FULL, format="json")  # agent: claude-sonnet-4-5, max_tokens 8000
    built_in_catalog["providers"]["anthropic"]["models"]["claude-sonnet-4-5"]["max_output_tokens"] = 5000
    use_catalog(built_in_catalog)

    body = auth_client.get(SETTINGS).json()

    assert body["agent"]["max_tokens"] == 5000
    assert body["stale"] == []


# --- the event ------------------------------------------------------------------------------------


def test_a_change_emits_llm_settings_changed_with_the_purposes_changed(auth_client, user):
    auth_client.put(SETTINGS, FULL, format="json")
    auth_client.put(SETTINGS, {**FULL, "agent": {**FULL["agent"], "temperature": 0.0}}, format="json")

    emitted = events("llm_settings_changed")

    assert [e["purposes"] for e in emitted] == [PURPOSES, ["agent"]]
    assert {e["user_id"] for e in emitted} == {str(user.id)}
    assert all("event_id" in e and "occurred_at" in e for e in emitted)


def test_no_change_no_event(auth_client):
    auth_client.put(SETTINGS, FULL, format="json")

    assert auth_client.put(SETTINGS, FULL, format="json").status_code == 200
    assert auth_client.patch(SETTINGS, {"agent": {"temperature": 0.4}}, format="json").status_code == 200
    assert auth_client.patch(SETTINGS, {}, format="json").status_code == 200

    assert len(events("llm_settings_changed")) == 1


# --- the cache: warm reads cost no query --------------------------------------------------------


def count_queries(func: Any) -> tuple[Any, int]:
    with CaptureQueriesContext(connection) as ctx:
        result = func()
    return result, len(ctx.captured_queries)


def test_a_warm_read_costs_no_sql_query(auth_client):
    auth_client.get(SETTINGS)  # fills the settings entry (and touches the session)

    response, queries = count_queries(lambda: auth_client.get(SETTINGS))

    assert (response.status_code, queries) == (200, 0)
    assert response.json() == {**defaults(), "stale": []}


def test_a_change_is_read_back_at_once_without_a_query(auth_client):
    auth_client.get(SETTINGS)
    auth_client.put(SETTINGS, FULL, format="json")

    response, queries = count_queries(lambda: auth_client.get(SETTINGS))

    assert (response.json(), queries) == ({**FULL, "stale": []}, 0)


def test_a_fresh_login_reads_settings_with_one_query_then_none(user, login):
    client = bearer(login(user)["access"])

    _, cold = count_queries(lambda: client.get(SETTINGS))
    response, warm = count_queries(lambda: client.get(SETTINGS))

    assert (cold, warm) == (1, 0)
    assert response.status_code == 200


def test_a_fill_that_read_the_database_before_a_change_cannot_hide_it(auth_client, user):
    old = llm_cache.llm_settings_saved_from_db(user_id=user.id)  # a reader, before the change commits
    auth_client.put(SETTINGS, FULL, format="json")

    cache.add(llm_cache.LLM_SETTINGS.key(user.id), {"saved": old})  # its late fill: `add`, so it loses

    assert auth_client.get(SETTINGS).json() == {**FULL, "stale": []}


def test_a_cache_outage_is_a_miss_answered_by_the_database(auth_client):
    auth_client.put(SETTINGS, FULL, format="json")

    with override_settings(CACHES=CACHE_DOWN):
        response = auth_client.get(SETTINGS)
        assert (response.status_code, response.json()) == (200, {**FULL, "stale": []})
        changed = {**FULL, "rag": {**FULL["rag"], "temperature": 1.0}}
        assert auth_client.put(SETTINGS, changed, format="json").status_code == 200
        assert auth_client.get(SETTINGS).json()["rag"]["temperature"] == 1.0


def test_a_change_whose_cache_write_failed_is_never_read_stale_afterwards(auth_client, user):
    auth_client.get(SETTINGS)  # the cache holds the defaults
    key = llm_cache.LLM_SETTINGS.key(user.id)
    assert cache.get(key) == {"saved": {}}

    with override_settings(CACHES=CACHE_DOWN):  # the after-commit write fails...
        assert auth_client.put(SETTINGS, FULL, format="json").status_code == 200
    assert len(llm_cache.LLM_SETTINGS.pending) == 1
    assert cache.get(key) == {"saved": {}}  # ...and the old entry survived the outage

    # The first read once the cache answers writes the change again before answering.
    assert auth_client.get(SETTINGS).json() == {**FULL, "stale": []}
    assert len(llm_cache.LLM_SETTINGS.pending) == 0
    assert cache.get(key)["saved"]["agent"]["model"] == "claude-sonnet-4-5"


# --- changes at once -------------------------------------------------------------------------------

PASSWORD = "a-long enough pass phrase"


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the embedded default has its own race test below"
)
def test_changes_at_once_on_postgresql_all_apply_one_after_the_other(login):
    user = UserFactory(password=PASSWORD)
    access = login(user)["access"]

    def change(temperature: float) -> int:
        body = {"agent": {"temperature": temperature}}
        return bearer(access).patch(SETTINGS, body, format="json").status_code

    # The first ones create the row: without the owner's lock two INSERTs would collide.
    statuses = run_at_once([lambda t=i / 10: change(t) for i in range(6)])

    assert statuses == [200] * 6, statuses
    assert LLMSetting.objects.filter(user=user).count() == 1
    assert OutboxEvent.objects.filter(key="llm_settings_changed").count() == 6


@pytest.mark.slow
def test_changes_at_once_on_the_embedded_default_all_answer(tmp_path):
    """The embedded default (a SQLite file, one process, threads), in a child process of its own."""
    env = environment("DATABASE_URL", "REDIS_URL")

    result = python("-m", "profiles.tests.embedded_race", str(tmp_path), "llm", "6", env=env, timeout=180)

    assert result.returncode == 0, result.stderr
    outcome = last_json_line(result.stdout)
    assert outcome["statuses"] == [200] * 18, result.stderr[-3000:]
    assert (outcome["rows"], outcome["events"]) == (1, 18)
