"""A user's LLM settings as the API answers them, read through the cache.

Other services read these on every agent call, so a warm read costs no SQL
query: the key `profile:llm:{user_id}` holds the user's *saved* rows, and the
effective settings (defaults for unset purposes, `stale` for models that left
the catalogue) are computed on each read from the catalogue in force, so a new
catalogue needs no cache flush.

The entry is a `core.read_through` family (`LLM_SETTINGS`), whose rules it follows;
the services write it after their changes commit.
"""

from __future__ import annotations

from typing import Any

from core.ids import Id
from core.read_through import ReadThrough

from ..llm_catalog import PURPOSES, Catalog, catalog
from ..models import LLMSetting

Saved = dict[str, dict[str, Any]]  # purpose -> {provider, model, temperature, max_tokens}

_FIELDS = ("purpose", "provider", "model", "temperature", "max_tokens")


def llm_settings_saved_from_db(*, user_id: Id) -> Saved:
    """The user's saved rows, one query."""
    return {
        row["purpose"]: {field: row[field] for field in _FIELDS[1:]}
        for row in LLMSetting.objects.filter(user_id=user_id).values(*_FIELDS)
    }


#: `profile:llm:{user_id}`: `{"saved": Saved}`.
LLM_SETTINGS: ReadThrough[dict[str, Saved]] = ReadThrough(
    "profile:llm",
    load=lambda user_id: {"saved": llm_settings_saved_from_db(user_id=user_id)},
    valid=lambda cached: isinstance(cached, dict) and isinstance(cached.get("saved"), dict),
)


def llm_settings_saved(*, user_id: Id) -> Saved:
    """The saved rows: from the cache when warm (no query), else from the database."""
    entry = LLM_SETTINGS.get(user_id)
    return entry["saved"] if entry is not None else {}


def llm_settings_effective_from(saved: Saved, current: Catalog) -> dict[str, Any]:
    """The API's answer: each purpose's settings, and `stale` for saved models the catalogue lost.

    A saved `max_tokens` above the model's (new) output limit answers the limit.
    """
    answer: dict[str, Any] = {}
    stale: list[str] = []
    for purpose in PURPOSES:
        row = saved.get(purpose)
        model = current.model(row["provider"], row["model"]) if row else None
        if row is None or model is None:
            if row is not None:
                stale.append(purpose)
            answer[purpose] = current.defaults[purpose].as_dict()
            continue
        answer[purpose] = {
            "provider": row["provider"],
            "model": row["model"],
            "temperature": row["temperature"],
            "max_tokens": min(row["max_tokens"], model.max_output_tokens),
        }
    answer["stale"] = stale
    return answer


def llm_settings_effective(*, user_id: Id) -> dict[str, Any]:
    """`GET /profile/llm-settings`: no SQL query when the cache is warm."""
    return llm_settings_effective_from(llm_settings_saved(user_id=user_id), catalog())
