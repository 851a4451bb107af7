"""Reads of resumes, requirements and processings, scoped to the caller."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet

from core.caching import FAILED, safe_call

from ..models import Processing
from ..services.documents import (
    DocumentModel,
    document_as_dict,
    document_cache_key,
    document_cache_put,
    document_not_found,
)


def documents_of(*, model: DocumentModel, user_id: Any) -> QuerySet[Any]:
    return model.objects.filter(user_id=user_id).order_by("-created_at")


def document_get(*, model: DocumentModel, user_id: Any, document_id: Any) -> dict[str, Any]:
    """One of the caller's documents in its API shape, read through the cache.

    A cached entry names its owner, so a warm read costs no query and still answers 404 to
    anyone else. A cache that fails is a miss: the database answers.
    """
    cached = safe_call("get", cache.get, document_cache_key(model, document_id))
    if isinstance(cached, dict):
        if cached.get("user_id") != str(user_id):
            raise document_not_found(model)
        return cached
    document = model.objects.filter(id=document_id, user_id=user_id).first()
    if document is None:
        raise document_not_found(model)
    data = document_as_dict(document)
    if cached is not FAILED:
        document_cache_put(model, data, only_if_absent=True)
    return data


def processings_of(*, user_id: Any) -> QuerySet[Processing]:
    return Processing.objects.filter(user_id=user_id).order_by("-created_at")
