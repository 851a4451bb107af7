"""Shapes of the LLM settings and the catalogue. Catalogue membership is the service's rule."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.serializers import Serializer

from ..llm_catalog import PURPOSES, TEMPERATURE_MAX
from .fields import FiniteFloatField


class PurposeSettingsSerializer(Serializer):
    provider = serializers.CharField(max_length=64)
    model = serializers.CharField(max_length=128)
    temperature = FiniteFloatField(min_value=0.0, max_value=TEMPERATURE_MAX)
    max_tokens = serializers.IntegerField(min_value=1, max_value=10_000_000)


class LLMSettingsBodySerializer(Serializer):
    """What `PUT /profile/llm-settings` takes (for the schema; `LLMSettingsInputSerializer` checks it)."""

    agent = PurposeSettingsSerializer()
    rag = PurposeSettingsSerializer()
    test_generator = PurposeSettingsSerializer()


class LLMSettingsSerializer(LLMSettingsBodySerializer):
    """What `GET /profile/llm-settings` answers (for the schema)."""

    stale = serializers.ListField(
        child=serializers.ChoiceField(choices=PURPOSES),
        help_text="Purposes whose saved model left the catalogue: they answer the default until changed.",
    )


class LLMSettingsInputSerializer(LLMSettingsBodySerializer):
    """`{purpose: {provider, model, temperature, max_tokens}, ...}`; errors keyed `purpose.field`.

    With `partial` (PATCH) any purposes, each with any of its fields; otherwise
    (PUT) all of them, whole. `stale`, as `GET` answers it (`current=`), may be
    sent back and is ignored; the base serializer refuses any other field.
    """

    stale = serializers.ListField(child=serializers.CharField(), read_only=True)

    def to_internal_value(self, data: Any) -> dict[str, dict[str, Any]]:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected an object of purposes."]})
        errors: dict[str, Any] = {}
        changes: dict[str, dict[str, Any]] = {}
        for purpose in PURPOSES:
            if purpose not in data:
                if not self.partial:
                    errors[purpose] = ["This field is required."]
                continue
            field = PurposeSettingsSerializer(data=data[purpose], partial=self.partial)
            if field.is_valid():
                changes[purpose] = dict(field.validated_data)
            elif isinstance(field.errors, dict):
                for name, messages in field.errors.items():
                    key = purpose if name == "non_field_errors" else f"{purpose}.{name}"
                    errors[key] = messages
        if errors:
            raise serializers.ValidationError(errors)
        return changes


class CatalogModelSerializer(Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    context_window = serializers.IntegerField()
    max_output_tokens = serializers.IntegerField()


class CatalogProviderSerializer(Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    models = CatalogModelSerializer(many=True)


class CatalogDefaultsSerializer(Serializer):
    agent = PurposeSettingsSerializer()
    rag = PurposeSettingsSerializer()
    test_generator = PurposeSettingsSerializer()


class CatalogSerializer(Serializer):
    providers = CatalogProviderSerializer(many=True)
    defaults = CatalogDefaultsSerializer()
