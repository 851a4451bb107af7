"""The LLM catalogue: which providers and models users may choose, and each purpose's default.

The built-in one is `llm_catalog.yaml` beside this module; `LLM_CATALOG_FILE` (JSON or
YAML, the same shape) replaces it. The file is read and checked once, when the app
starts (`ProfilesConfig.ready`): a malformed catalogue stops the start with an error
naming the file and the entry, instead of a 500 on the first settings read.

Checked by hand rather than with a JSON Schema: the rules that matter most cross
entries (a default names a model of its provider, `max_tokens` within that model's
output limit), and the error must name the entry by its id, not by a schema path.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

BUILT_IN = Path(__file__).resolve().parent / "llm_catalog.yaml"
PURPOSES = ("agent", "rag", "test_generator")
TEMPERATURE_MAX = 2.0


@dataclass(frozen=True)
class LLMModel:
    id: str
    name: str
    context_window: int
    max_output_tokens: int


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    models: dict[str, LLMModel]


@dataclass(frozen=True)
class Choice:
    """The settings of one purpose: a user's, or the catalogue's default."""

    provider: str
    model: str
    temperature: float
    max_tokens: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }


@dataclass(frozen=True)
class Catalog:
    providers: dict[str, Provider]
    defaults: dict[str, Choice]
    source: str

    def model(self, provider: str, model: str) -> LLMModel | None:
        entry = self.providers.get(provider)
        return entry.models.get(model) if entry else None

    def as_api(self) -> dict[str, Any]:
        """`GET /llm/catalog`: lists in the file's order, so a UI can show them as they are."""
        return {
            "providers": [
                {
                    "id": provider.id,
                    "name": provider.name,
                    "models": [
                        {
                            "id": model.id,
                            "name": model.name,
                            "context_window": model.context_window,
                            "max_output_tokens": model.max_output_tokens,
                        }
                        for model in provider.models.values()
                    ],
                }
                for provider in self.providers.values()
            ],
            "defaults": {purpose: choice.as_dict() for purpose, choice in self.defaults.items()},
        }


class CatalogError(ValueError):
    def __init__(self, entry: str, message: str) -> None:
        super().__init__(f"{entry}: {message}")
        self.entry = entry


# --- checking -----------------------------------------------------------------------------------


def _mapping(
    value: Any, entry: str, allowed: set[str], required: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CatalogError(entry, "must be a mapping")
    for key in value:
        if not isinstance(key, str) or key not in allowed:
            raise CatalogError(f"{entry}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
    for key in sorted(required - set(value)):
        raise CatalogError(f"{entry}.{key}", "is required")
    return value


def _positive_int(value: Any, entry: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CatalogError(entry, f"must be a positive integer, got {value!r}")
    return value


def _text(value: Any, entry: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise CatalogError(entry, f"must be a non-empty string of at most {max_length} characters")
    return value


def _ids(value: Any, entry: str, max_length: int) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise CatalogError(entry, "must be a non-empty mapping of ids")
    for key in value:
        if not isinstance(key, str) or not key.strip() or len(key) > max_length or key != key.strip():
            raise CatalogError(f"{entry}.{key}", f"an id must be a string of 1 to {max_length} characters")
    return value


def _model(model_id: str, raw: Any, entry: str) -> LLMModel:
    data = _mapping(
        raw, entry, {"name", "context_window", "max_output_tokens"}, {"context_window", "max_output_tokens"}
    )
    context = _positive_int(data["context_window"], f"{entry}.context_window")
    output = _positive_int(data["max_output_tokens"], f"{entry}.max_output_tokens")
    if output > context:
        raise CatalogError(f"{entry}.max_output_tokens", f"{output} is larger than context_window {context}")
    name = _text(data.get("name", model_id), f"{entry}.name", 200)
    return LLMModel(model_id, name, context, output)


def _default(raw: Any, entry: str, providers: dict[str, Provider]) -> Choice:
    data = _mapping(
        raw,
        entry,
        {"provider", "model", "temperature", "max_tokens"},
        {"provider", "model", "temperature", "max_tokens"},
    )
    provider = providers.get(data["provider"]) if isinstance(data["provider"], str) else None
    if provider is None:
        raise CatalogError(f"{entry}.provider", f"{data['provider']!r} is not a provider of the catalogue")
    model = provider.models.get(data["model"]) if isinstance(data["model"], str) else None
    if model is None:
        raise CatalogError(f"{entry}.model", f"{data['model']!r} is not a model of {provider.id}")
    temperature = data["temperature"]
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
        or not 0 <= temperature <= TEMPERATURE_MAX
    ):
        raise CatalogError(f"{entry}.temperature", f"must be a number from 0 to {TEMPERATURE_MAX:g}")
    max_tokens = _positive_int(data["max_tokens"], f"{entry}.max_tokens")
    if max_tokens > model.max_output_tokens:
        raise CatalogError(
            f"{entry}.max_tokens",
            f"{max_tokens} is above {model.id}'s output limit {model.max_output_tokens}",
        )
    return Choice(provider.id, model.id, float(temperature), max_tokens)


def catalog_parse(data: Any, *, source: str) -> Catalog:
    """A checked catalogue from parsed JSON/YAML; `CatalogError` names the first bad entry."""
    root = _mapping(data, "catalogue", {"providers", "defaults"}, {"providers", "defaults"})
    providers: dict[str, Provider] = {}
    for provider_id, raw in _ids(root["providers"], "providers", 64).items():
        entry = f"providers.{provider_id}"
        body = _mapping(raw, entry, {"name", "models"}, {"models"})
        models = {
            model_id: _model(model_id, raw_model, f"{entry}.models.{model_id}")
            for model_id, raw_model in _ids(body["models"], f"{entry}.models", 128).items()
        }
        providers[provider_id] = Provider(
            provider_id, _text(body.get("name", provider_id), f"{entry}.name", 200), models
        )
    raw_defaults = _mapping(root["defaults"], "defaults", set(PURPOSES), set(PURPOSES))
    defaults = {
        purpose: _default(raw_defaults[purpose], f"defaults.{purpose}", providers) for purpose in PURPOSES
    }
    return Catalog(providers=providers, defaults=defaults, source=source)


def catalog_read(path: Path) -> Catalog:
    """Read and check a catalogue file; any problem is an `ImproperlyConfigured` naming the file."""
    label = f"LLM catalogue {path}" if path == BUILT_IN else f"LLM_CATALOG_FILE {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImproperlyConfigured(f"{label}: cannot read it: {exc}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise ImproperlyConfigured(f"{label}: not valid {kind}: {exc}") from None
    try:
        return catalog_parse(data, source=str(path))
    except CatalogError as exc:
        raise ImproperlyConfigured(f"{label}: {exc}") from None


# --- the catalogue in force ---------------------------------------------------------------------

_current: Catalog | None = None


def catalog_load() -> Catalog:
    """(Re)read the catalogue the settings name; called at start, and by tests that change it."""
    global _current
    path = Path(settings.LLM_CATALOG_FILE) if settings.LLM_CATALOG_FILE else BUILT_IN
    _current = catalog_read(path)
    return _current


def catalog() -> Catalog:
    """The catalogue in force: read once per process."""
    return _current if _current is not None else catalog_load()
