"""A user's LLM settings as the API answers them, read through the cache.

Other services read these on every agent call, so a warm read costs no SQL
query: the key `profile:llm:{user_id}` holds the user's *saved* rows, and the
effective settings (defaults for unset purposes, `stale` for models that left
the catalogue) are computed on each read from the catalogue in force, so a new
catalogue needs no cache flush.

The safety rules are those of `accounts.cache`: the database is the source of
truth; a fill after a miss uses `add` (set only if absent) and a change
*writes the new state* after commit, so a fill that read the database before
the change cannot overwrite it; a cache error is a miss (the database
answers), and a write that failed is written again by this process as soon as
the cache answers.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from core.caching import FAILED, safe_call

from ..llm_catalog import PURPOSES, Catalog, catalog
from ..models import LLMSetting

Saved = dict[str, dict[str, Any]]  # purpose -> {provider, model, temperature, max_tokens}

_FIELDS = ("purpose", "provider", "model", "temperature", "max_tokens")

# Users whose after-commit cache write failed (cache down): written again from the
# database once the cache answers, so a change is not hidden by the old entry.
_pending: set[str] = set()


def _key(user_id: Any) -> str:
    return f"profile:llm:{user_id}"


def llm_settings_saved_from_db(*, user_id: Any) -> Saved:
    """The user's saved rows, one query."""
    return {
        row["purpose"]: {field: row[field] for field in _FIELDS[1:]}
        for row in LLMSetting.objects.filter(user_id=user_id).values(*_FIELDS)
    }


def _write(user_id: str) -> None:
    entry = {"saved": llm_settings_saved_from_db(user_id=user_id)}
    ok = safe_call("set", cache.set, _key(user_id), entry, settings.CACHE_TTL) is not FAILED
    (_pending.discard if ok else _pending.add)(user_id)


def llm_settings_refresh(user_id: Any) -> None:
    """After the current transaction commits, write the user's saved settings to the cache."""
    transaction.on_commit(lambda: _write(str(user_id)))


def pending_writes() -> int:
    return len(_pending)


def llm_settings_saved(*, user_id: Any) -> Saved:
    """The saved rows: from the cache when warm (no query), else from the database."""
    key = _key(user_id)
    cached = safe_call("get", cache.get, key)
    if cached is not FAILED and _pending:
        for pending_id in list(_pending):
            _write(pending_id)
        cached = safe_call("get", cache.get, key)  # the retry may have replaced what was read
    if cached is FAILED:
        return llm_settings_saved_from_db(user_id=user_id)
    if isinstance(cached, dict) and isinstance(cached.get("saved"), dict):
        return cached["saved"]
    saved = llm_settings_saved_from_db(user_id=user_id)
    safe_call("add", cache.add, key, {"saved": saved}, settings.CACHE_TTL)
    return saved


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


def llm_settings_effective(*, user_id: Any) -> dict[str, Any]:
    """`GET /profile/llm-settings`: no SQL query when the cache is warm."""
    return llm_settings_effective_from(llm_settings_saved(user_id=user_id), catalog())
