"""The caller's documents and processings, for `GET /users/me/export` (called by accounts)."""

from __future__ import annotations

from typing import Any

from accounts.api_shapes import api_time
from core.ids import Id

from ..models import Document, Processing, Requirements, Resume


def _document(document: Document) -> dict[str, Any]:
    return {
        "id": str(document.id),
        "title": document.title,
        "text": document.text,
        "source": document.source,
        "created_at": api_time(document.created_at),
        # The uploaded file as it was received: its name, size, and where its owner downloads it.
        "file": (
            {
                "name": document.file_name,
                "size": document.file_size,
                "download": f"/api/v1/{'resumes' if isinstance(document, Resume) else 'requirements'}"
                f"/{document.id}/file",
            }
            if document.file
            else None
        ),
    }


def documents_export(*, user_id: Id) -> dict[str, Any]:
    resumes = Resume.objects.filter(user_id=user_id).order_by("-created_at")
    requirements = Requirements.objects.filter(user_id=user_id).order_by("-created_at")
    processings = Processing.objects.filter(user_id=user_id).order_by("-created_at")
    return {
        "resumes": [_document(d) for d in resumes.iterator()],
        "requirements": [_document(d) for d in requirements.iterator()],
        "processings": [
            {
                "id": str(p.id),
                "resume_id": str(p.resume_id),
                "requirements_id": str(p.requirements_id),
                "status": p.status,
                "result": p.result,
                "score": p.score,
                "created_at": api_time(p.created_at),
                "finished_at": api_time(p.finished_at) if p.finished_at else None,
            }
            for p in processings.iterator()
        ],
    }
