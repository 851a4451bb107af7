"""What each user has configured or produced: profile data first, then documents and processings."""


# --- Documents and processings (resumes, requirements, the AI round trip) -------------------------

import uuid
from typing import Any, cast

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import models
from django.utils import timezone
from django.utils.functional import LazyObject, empty


class DocumentStorage(LazyObject):
    """The storage named `documents` in `STORAGES` (a setting: the file system, or an object store),
    looked up on first use rather than at import (tests point it elsewhere; see `reset`)."""

    def _setup(self) -> None:
        self._wrapped: Any = storages["documents"]

    def reset(self) -> None:
        self._wrapped = empty


documents_storage = DocumentStorage()


def document_storage() -> Storage:
    # A lazy proxy of a Storage: it answers every Storage method.
    return cast(Storage, documents_storage)


def document_file_name(instance: "Document", filename: str) -> str:
    """A generated name: never the client's name or path. The extension is the detected type's."""
    suffix = filename.rsplit(".", 1)[-1] if "." in filename else "bin"
    return f"{instance.kind}/{uuid.uuid4().hex}.{suffix}"


class Source(models.TextChoices):
    TEXT = "text", "Text (JSON)"
    TXT = "txt", "Text file"
    PDF = "pdf", "PDF"
    DOCX = "docx", "Word document"


class Document(models.Model):
    """What resumes and requirements share: an owner, a title, the text, and the uploaded file if any."""

    kind = "document"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=200, blank=True)
    text = models.TextField()
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.TEXT)
    # The client's file name, shown back to its owner; the file on disk has a generated name.
    file_name = models.CharField(max_length=255, blank=True)
    file = models.FileField(
        upload_to=document_file_name, storage=document_storage, blank=True, max_length=200
    )
    file_size = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title or str(self.id)


class Resume(Document):
    """A user's resume: text typed in, or extracted from an uploaded .txt, .pdf or .docx."""

    kind = "resume"

    class Meta(Document.Meta):
        indexes = [models.Index(fields=["user", "-created_at"], name="resume_user_created_idx")]


class Requirements(Document):
    """A job's requirements that resumes are processed against; as a resume, text or an upload."""

    kind = "requirements"

    class Meta(Document.Meta):
        verbose_name_plural = "requirements"
        indexes = [models.Index(fields=["user", "-created_at"], name="requirements_user_created_idx")]


class ProcessingStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Processing(models.Model):
    """One request to the AI handler to process a resume against requirements, and its result."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    resume = models.ForeignKey(Resume, on_delete=models.CASCADE, related_name="processings")
    requirements = models.ForeignKey(Requirements, on_delete=models.CASCADE, related_name="processings")
    status = models.CharField(max_length=8, choices=ProcessingStatus.choices, default=ProcessingStatus.QUEUED)
    result = models.JSONField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="processing_user_created_idx"),
            models.Index(fields=["requirements", "-created_at"], name="processing_req_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"
