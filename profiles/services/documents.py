"""Resumes and requirements: create (text or an uploaded file), delete, and their cache entries.

The cached API shape (`selectors.documents.DOCUMENT_CACHES`) is written after the create commits
and dropped after the delete commits. Uploaded files are kept through the `documents` storage
under a generated name and removed when their row goes, whichever way it goes
(`document_file_delete`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from accounts.models import User
from core.ids import Id
from notifications.services import event_emit

from ..models import Document, Processing, Requirements, Resume, Source
from ..selectors.documents import DOCUMENT_CACHES, DocumentModel, document_as_dict, document_not_found
from ..uploads import extract_text, text_too_long

logger = logging.getLogger(__name__)


def _title_from(name: str) -> str:
    return os.path.splitext(os.path.basename(name))[0][:200]


def document_create(
    *,
    model: DocumentModel,
    user_id: Id,
    title: str = "",
    text: str | None = None,
    upload: UploadedFile | None = None,
) -> Document:
    """A resume or requirements from a text, or from an uploaded .txt / .pdf / .docx.

    The file is checked and its text extracted before anything is stored; a refusal
    (413, 415) leaves neither a row nor a file behind.
    """
    document = model(user_id=user_id, title=title[:200])
    if upload is not None:
        client_name = os.path.basename(upload.name or "")
        extracted = extract_text(upload, client_name)
        document.text = extracted.text
        document.source = extracted.source
        document.file_name = client_name[:255]
        document.file_size = upload.size
        document.title = document.title or _title_from(client_name)
        # The name is generated (models.document_file_name); only the detected type's
        # extension is kept. A FileSystemStorage moves a spooled upload, no copy in memory.
        upload.seek(0)
        document.file.save(f"upload.{extracted.source}", upload, save=False)
    else:
        if text is None or len(text) > settings.DOCUMENT_MAX_TEXT_CHARS:
            raise text_too_long()
        document.text = text
        document.source = Source.TEXT
    try:
        with transaction.atomic():
            document.save(force_insert=True)
            event_emit(
                name=f"new_{model.kind}",
                payload={
                    "user_id": str(user_id),
                    f"{model.kind}_id": str(document.id),
                    "created_at": document.created_at.isoformat(),
                },
            )
    except BaseException:
        if document.file:
            _delete_file(document.file.storage, document.file.name)
        raise
    DOCUMENT_CACHES[model].put_after_commit({document.id: document_as_dict(document)})
    return document


@transaction.atomic
def document_delete(*, model: DocumentModel, user_id: Id, document_id: Id) -> list[str]:
    """Delete a caller's document and its processings, in one transaction; their ids are emitted.

    Returns the ids of the processings that went with it.
    """
    document = model.objects.select_for_update().filter(id=document_id, user_id=user_id).first()
    if document is None:
        raise document_not_found(model)
    processing_ids = [
        str(pk) for pk in Processing.objects.filter(**{model.kind: document}).values_list("id", flat=True)
    ]
    Processing.objects.filter(id__in=processing_ids).delete()
    document.delete()  # its file goes after commit: document_file_delete
    event_emit(
        name=f"delete_{model.kind}",
        payload={
            "user_id": str(user_id),
            f"{model.kind}_id": str(document_id),
            "processing_ids": processing_ids,
        },
    )
    DOCUMENT_CACHES[model].put_after_commit({document_id: None})
    return processing_ids


def _delete_file(storage: Any, name: str | None) -> None:
    try:
        storage.delete(name)
    except Exception:  # a file left behind is logged, never a failed request
        logger.warning("could not delete stored document file %s", name, exc_info=True)


def document_file_delete(sender: Any, instance: Document, **kwargs: Any) -> None:
    """`post_delete` of Resume and Requirements: the stored file goes once the delete commits.

    A signal because rows also go by cascade (an account purged, an admin's delete) without
    passing through `document_delete`; after commit, so a rolled-back delete keeps its file.
    """
    if kwargs.get("raw") or not instance.file:
        return
    storage, name = instance.file.storage, instance.file.name
    transaction.on_commit(lambda: _delete_file(storage, name))


def user_documents_delete(sender: Any, instance: User, **kwargs: Any) -> None:
    """`pre_delete` of a user (an account purged, a hard delete): each of its documents goes through
    `document_delete` first, with the event and the cache drop the API's delete has.

    A signal because `accounts` must not import this app: the account's services delete the row,
    and the cascade alone would take the documents without a word to the other services (and
    leave their texts readable in the cache until it expires).
    """
    if kwargs.get("raw"):
        return
    for model in (Resume, Requirements):
        for document_id in model.objects.filter(user_id=instance.pk).values_list("id", flat=True):
            document_delete(model=model, user_id=instance.pk, document_id=document_id)
