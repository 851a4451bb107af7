"""The LLM catalogue: `GET /llm/catalog`, the built-in set, and LLM_CATALOG_FILE checked at start."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured

from profiles.llm_catalog import BUILT_IN, catalog, catalog_read
from testing.processes import environment, python

CATALOG = "/api/v1/llm/catalog"


@pytest.mark.django_db
def test_the_catalogue_lists_providers_models_limits_and_defaults(auth_client):
    response = auth_client.get(CATALOG)

    assert response.status_code == 200
    body = response.json()
    providers = {p["id"]: p for p in body["providers"]}
    assert set(providers) == {"openai", "anthropic", "yandexgpt", "gigachat", "ollama"}
    for provider in body["providers"]:
        assert provider["name"]
        assert provider["models"]
        for model in provider["models"]:
            assert set(model) == {"id", "name", "context_window", "max_output_tokens"}
            assert 0 < model["max_output_tokens"] <= model["context_window"]
    assert set(body["defaults"]) == {"agent", "rag", "test_generator"}
    for default in body["defaults"].values():
        models = {m["id"]: m for m in providers[default["provider"]]["models"]}
        assert default["max_tokens"] <= models[default["model"]]["max_output_tokens"]
        assert 0 <= default["temperature"] <= 2


@pytest.mark.django_db
def test_the_catalogue_needs_a_token(api_client):
    assert api_client.get(CATALOG).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_llm_catalog_file_replaces_the_built_in_one(auth_client, use_catalog, suffix):
    data = {
        "providers": {
            "acme": {"name": "Acme", "models": {"a1": {"context_window": 1000, "max_output_tokens": 100}}}
        },
        "defaults": {
            p: {"provider": "acme", "model": "a1", "temperature": 1, "max_tokens": 50}
            for p in ("agent", "rag", "test_generator")
        },
    }
    use_catalog(data, suffix)

    body = auth_client.get(CATALOG).json()

    assert body["providers"] == [
        {
            "id": "acme",
            "name": "Acme",
            "models": [{"id": "a1", "name": "a1", "context_window": 1000, "max_output_tokens": 100}],
        }
    ]
    assert body["defaults"]["rag"] == {
        "provider": "acme",
        "model": "a1",
        "temperature": 1.0,
        "max_tokens": 50,
    }
    # ...and the settings are checked against it.
    bad = auth_client.patch("/api/v1/profile/llm-settings", {"agent": {"model": "gpt-4o"}}, format="json")
    assert "agent.model" in bad.json()


def _broken(data: dict, mutate) -> dict:
    mutate(data)
    return data


MALFORMED = [
    # (what is wrong, the entry the error must name)
    (
        lambda d: d["providers"]["openai"]["models"]["gpt-4o"].update(context_window=0),
        "providers.openai.models.gpt-4o.context_window",
    ),
    (
        lambda d: d["providers"]["anthropic"]["models"]["claude-haiku-4-5"].update(max_output_tokens="lots"),
        "providers.anthropic.models.claude-haiku-4-5.max_output_tokens",
    ),
    (
        lambda d: d["providers"]["ollama"]["models"]["qwen2.5:7b"].update(max_output_tokens=10**6),
        "providers.ollama.models.qwen2.5:7b.max_output_tokens",
    ),
    (
        lambda d: d["providers"]["gigachat"]["models"]["GigaChat-2"].pop("context_window"),
        "providers.gigachat.models.GigaChat-2.context_window",
    ),
    (
        lambda d: d["providers"]["gigachat"]["models"]["GigaChat-2"].update(contxt=5),
        "providers.gigachat.models.GigaChat-2.contxt",
    ),
    (lambda d: d["providers"]["openai"].update(models={}), "providers.openai.models"),
    (lambda d: d["providers"].update(empty=None), "providers.empty"),
    (lambda d: d["defaults"].pop("rag"), "defaults.rag"),
    (lambda d: d["defaults"]["agent"].update(provider="nobody"), "defaults.agent.provider"),
    (lambda d: d["defaults"]["agent"].update(model="claude-haiku-4-5"), "defaults.agent.model"),
    (
        lambda d: d["defaults"]["test_generator"].update(temperature=2.5),
        "defaults.test_generator.temperature",
    ),
    (lambda d: d["defaults"]["rag"].update(max_tokens=10**6), "defaults.rag.max_tokens"),
    (lambda d: d.update(extra=1), "catalogue.extra"),
    (lambda d: d.pop("providers"), "catalogue.providers"),
]


@pytest.mark.parametrize(("mutate", "entry"), MALFORMED, ids=[entry for _, entry in MALFORMED])
def test_a_malformed_catalogue_names_the_file_and_the_entry(tmp_path, built_in_catalog, mutate, entry):
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(_broken(built_in_catalog, mutate)))

    with pytest.raises(ImproperlyConfigured) as error:
        catalog_read(path)

    assert f"LLM_CATALOG_FILE {path}: {entry}:" in str(error.value)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("c.json", "{not json", "not valid JSON"),
        ("c.yaml", "providers: [unclosed", "not valid YAML"),
        ("c.yaml", "- a list\n", "catalogue: must be a mapping"),
        ("c.yaml", "", "catalogue: must be a mapping"),
    ],
)
def test_an_unreadable_catalogue_names_the_file(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)

    with pytest.raises(ImproperlyConfigured, match=expected) as error:
        catalog_read(path)

    assert str(path) in str(error.value)


def test_a_missing_catalogue_file_names_it(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="cannot read it") as error:
        catalog_read(tmp_path / "nowhere.yaml")

    assert "nowhere.yaml" in str(error.value)


def test_the_built_in_catalogue_is_valid_and_in_force_by_default():
    assert catalog().source == str(BUILT_IN)
    assert catalog_read(BUILT_IN) == catalog()


def _start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return python(
        "manage.py", "check", env=environment("DATABASE_URL", "REDIS_URL", "LLM_CATALOG_FILE", **env)
    )


@pytest.mark.slow
def test_a_malformed_catalogue_file_stops_the_start(tmp_path, built_in_catalog):
    built_in_catalog["providers"]["openai"]["models"]["gpt-4.1"]["max_output_tokens"] = -1
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(built_in_catalog))

    result = _start({"LLM_CATALOG_FILE": str(path)})

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: ")
    assert f"LLM_CATALOG_FILE {path}: providers.openai.models.gpt-4.1.max_output_tokens:" in last_line


@pytest.mark.slow
def test_a_good_catalogue_file_starts(tmp_path, built_in_catalog):
    path = tmp_path / "catalog.yml"
    path.write_text(yaml.safe_dump(built_in_catalog))

    result = _start({"LLM_CATALOG_FILE": str(path)})

    assert result.returncode == 0, result.stderr
