"""Changing a user's LLM settings: checked against the catalogue, emitted, cached after commit."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.ids import Id
from notifications.services import event_emit

from ..llm_catalog import PURPOSES, catalog
from ..models import LLMSetting
from ..selectors.llm_settings import LLM_SETTINGS, llm_settings_effective_from, llm_settings_saved_from_db
from .owner_lock import owner_lock

EVENT_CHANGED = "llm_settings_changed"
FIELDS = ("provider", "model", "temperature", "max_tokens")


def _check(purpose: str, values: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """Provider, model and max_tokens against the catalogue; problems keyed `purpose.field`."""
    current = catalog()
    provider = current.providers.get(values["provider"])
    if provider is None:
        known = ", ".join(current.providers)
        errors[f"{purpose}.provider"] = [f"Unknown provider {values['provider']!r}. Providers: {known}."]
        return
    model = provider.models.get(values["model"])
    if model is None:
        elsewhere = [p.id for p in current.providers.values() if values["model"] in p.models]
        hint = f" It is a model of {', '.join(elsewhere)}." if elsewhere else ""
        errors[f"{purpose}.model"] = [f"{values['model']!r} is not a model of {provider.id}.{hint}"]
        return
    if values["max_tokens"] > model.max_output_tokens:
        errors[f"{purpose}.max_tokens"] = [
            f"At most {model.max_output_tokens}, the output limit of {model.id}."
        ]


def llm_settings_update(
    *, user_id: Id, changes: dict[str, dict[str, Any]], replace: bool = False
) -> dict[str, Any]:
    """Save settings for the purposes in `changes`; answer the effective settings.

    `replace` (PUT): every purpose is given whole. Otherwise (PATCH) a purpose's
    missing fields keep their effective value (a stale purpose's, the default's).
    Emits `llm_settings_changed` with the purposes whose saved settings changed.
    """
    unknown = sorted(set(changes) - set(PURPOSES))
    if unknown:
        raise ValidationError({name: ["Unknown purpose."] for name in unknown})
    if replace and set(changes) != set(PURPOSES):
        raise ValidationError({p: ["This field is required."] for p in PURPOSES if p not in changes})
    with transaction.atomic():
        owner_lock(user_id=user_id)  # two changes of one user apply one after the other
        rows = {row.purpose: row for row in LLMSetting.objects.filter(user_id=user_id)}
        saved = {p: {f: getattr(row, f) for f in FIELDS} for p, row in rows.items()}
        effective = llm_settings_effective_from(saved, catalog())
        wanted: dict[str, dict[str, Any]] = {}
        errors: dict[str, list[str]] = {}
        for purpose, fields in changes.items():
            values = dict(fields) if replace else {**effective[purpose], **fields}
            missing = [f for f in FIELDS if f not in values]
            for field in missing:
                errors[f"{purpose}.{field}"] = ["This field is required."]
            if not missing:
                _check(purpose, values, errors)
            wanted[purpose] = {f: values[f] for f in FIELDS if f in values}
        if errors:
            raise ValidationError(errors)
        changed = []
        for purpose in PURPOSES:
            new = wanted.get(purpose)
            if new is None or saved.get(purpose) == new:
                continue
            if purpose in rows:
                LLMSetting.objects.filter(id=rows[purpose].id).update(**new, updated_at=timezone.now())
            else:
                LLMSetting.objects.create(user_id=user_id, purpose=purpose, **new)
            changed.append(purpose)
        if changed:
            event_emit(name=EVENT_CHANGED, payload={"user_id": str(user_id), "purposes": changed})
            LLM_SETTINGS.write_after_commit(user_id)
        saved_now = llm_settings_saved_from_db(user_id=user_id) if changed else saved
    return llm_settings_effective_from(saved_now, catalog())
