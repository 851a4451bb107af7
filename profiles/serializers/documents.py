"""Shapes of resumes, requirements and processings: input checks only, no workflow."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.serializers import ModelSerializer, Serializer

from ..models import Processing, Resume


class StrictCharField(serializers.CharField):
    """A string, and only a string: DRF's CharField would turn 12 or true into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class DocumentCreateSerializer(Serializer):
    """JSON `{title?, text}` or multipart `file` (+ `title?`): exactly one of text and file."""

    title = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    # No max_length: a text over DOCUMENT_MAX_TEXT_CHARS is a 413, said by the service.
    text = StrictCharField(required=False, trim_whitespace=False)
    file = serializers.FileField(required=False, allow_empty_file=False, use_url=False)

    def validate_text(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "text" not in attrs and "file" not in attrs:
            raise serializers.ValidationError(
                "A text or a file is required: send JSON with `text`, or a multipart `file`."
            )
        if "text" in attrs and "file" in attrs:
            raise serializers.ValidationError("Send either a text (JSON) or a file (multipart), not both.")
        return attrs


class DocumentSerializer(ModelSerializer):
    """The API shape of a resume or requirements (`selectors.documents.document_as_dict` for the cache)."""

    class Meta:
        model = Resume
        fields = ["id", "title", "text", "source", "file_name", "file_size", "created_at"]
        read_only_fields = fields


class ProcessingCreateSerializer(Serializer):
    resume_id = serializers.UUIDField()
    requirements_id = serializers.UUIDField()


class ProcessingSerializer(ModelSerializer):
    resume_id = serializers.UUIDField(read_only=True)
    requirements_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Processing
        fields = [
            "id",
            "resume_id",
            "requirements_id",
            "status",
            "result",
            "score",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields
