"""What each user has configured or produced: profile data first, then documents and processings."""

from __future__ import annotations

import uuid
from typing import Any, cast

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import CheckConstraint, F, Q
from django.utils import timezone
from django.utils.functional import LazyObject, empty

# --- Profile data: LLM settings, chat sessions, quiz results ---------------------------------

#: The largest `metadata` a chat session may carry, and the largest `answers` of a quiz result,
#: as compact JSON: the agent and the test generator keep the bulk, we keep what the UI lists.
CHAT_METADATA_MAX_BYTES = 16 * 1024
QUIZ_ANSWERS_MAX_BYTES = 64 * 1024


class Purpose(models.TextChoices):
    """What an LLM is used for; each purpose has settings of its own."""

    AGENT = "agent", "AI agent"
    RAG = "rag", "RAG service"
    TEST_GENERATOR = "test_generator", "Test generator"


class LLMSetting(models.Model):
    """A user's choice of model for one purpose. Absent: the catalogue's default applies.

    Provider and model are checked against the catalogue when saved, not by a
    foreign key: the catalogue is configuration (`LLM_CATALOG_FILE`), and a
    model that leaves it must not take the user's row with it (the read
    answers the default and says the purpose is stale).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="llm_settings")
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128)
    temperature = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    max_tokens = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "LLM setting"
        ordering = ["user", "purpose"]
        constraints = [
            models.UniqueConstraint(fields=["user", "purpose"], name="llm_setting_one_per_purpose"),
            CheckConstraint(
                condition=Q(temperature__gte=0) & Q(temperature__lte=2), name="llm_setting_temperature_range"
            ),
            CheckConstraint(condition=Q(max_tokens__gte=1), name="llm_setting_max_tokens_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose}: {self.provider}/{self.model}"


class ChatSession(models.Model):
    """A conversation of the AI agent (its id there is `external_id`): the metadata the UI lists.

    At most `MAX_USER_SESSIONS` per user; creating one more removes the least recently active.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_sessions")
    external_id = models.CharField(max_length=255)
    title = models.CharField(max_length=255, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    last_activity_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_activity_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "external_id"], name="chat_session_external_id_per_user"),
        ]
        indexes = [models.Index(fields=["user", "-last_activity_at"])]

    def __str__(self) -> str:
        return self.title or self.external_id


class QuizResult(models.Model):
    """One attempt at a quiz of the test generator. `percent` is derived, never stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiz_results")
    quiz_id = models.CharField(max_length=255)
    topic = models.CharField(max_length=255)
    score = models.FloatField(validators=[MinValueValidator(0.0)])
    max_score = models.FloatField()
    answers = models.JSONField(default=dict, blank=True)
    completed_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-completed_at"]
        constraints = [
            CheckConstraint(condition=Q(max_score__gt=0), name="quiz_result_max_score_positive"),
            CheckConstraint(
                condition=Q(score__gte=0) & Q(score__lte=F("max_score")), name="quiz_result_score_in_range"
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-completed_at"]),
            models.Index(fields=["user", "topic", "-completed_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.topic}: {self.score}/{self.max_score}"

    @property
    def percent(self) -> float:
        return round(self.score * 100.0 / self.max_score, 2)


# --- Documents and processings (resumes, requirements, the AI round trip) -------------------------


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


def document_file_name(instance: Document, filename: str) -> str:
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
