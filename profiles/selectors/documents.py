"""Reads of resumes, requirements and processings, scoped to the caller.

A document's API shape is cached under `resume:{id}` / `requirements:{id}` (the seed's keys) for
`STORAGE_TIME_RESUME` / `STORAGE_TIME_REQUIREMENTS`: two `core.read_through` families, whose
entries name their owner, so a warm read costs no query and still answers 404 to anyone else.
The services write them after a create or a delete commits.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from accounts.api_shapes import api_time
from core.errors import NotFound
from core.ids import Id
from core.read_through import ReadThrough

from ..models import Document, Processing, Requirements, Resume

DocumentModel = type[Resume] | type[Requirements]


def document_not_found(model: DocumentModel) -> NotFound:
    return NotFound("Resume not found." if model is Resume else "Requirements not found.")


def document_as_dict(document: Document) -> dict[str, Any]:
    """The API shape of a document, plus its owner (for the scope check of a cached read)."""
    return {
        "id": str(document.id),
        "user_id": str(document.user_id),
        "title": document.title,
        "text": document.text,
        "source": document.source,
        "file_name": document.file_name,
        "file_size": document.file_size,
        "created_at": api_time(document.created_at),
    }


def _family(model: DocumentModel, lifetime: str) -> ReadThrough[dict[str, Any]]:
    def load(document_id: str) -> dict[str, Any] | None:
        document = model.objects.filter(id=document_id).first()
        return None if document is None else document_as_dict(document)

    return ReadThrough(
        model.kind,
        load=load,
        ttl=lambda value: int(getattr(settings, lifetime)),
        owner=lambda value: str(value["user_id"]),
        valid=lambda cached: isinstance(cached, dict) and "user_id" in cached,
    )


DOCUMENT_CACHES: dict[DocumentModel, ReadThrough[dict[str, Any]]] = {
    Resume: _family(Resume, "STORAGE_TIME_RESUME"),
    Requirements: _family(Requirements, "STORAGE_TIME_REQUIREMENTS"),
}


def documents_of(*, model: DocumentModel, user_id: Id) -> QuerySet[Any]:
    return model.objects.filter(user_id=user_id).order_by("-created_at")


def document_get(*, model: DocumentModel, user_id: Id, document_id: Id) -> dict[str, Any]:
    """One of the caller's documents in its API shape, read through the cache; `NotFound` if not theirs."""
    data = DOCUMENT_CACHES[model].get(document_id, owner=user_id)
    if data is None:
        raise document_not_found(model)
    return data


def processings_of(*, user_id: Id) -> QuerySet[Processing]:
    return Processing.objects.filter(user_id=user_id).order_by("-created_at")
