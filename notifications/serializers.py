from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.serializers import ModelSerializer, Serializer

from .models import Kind, Notification


class NotificationSerializer(ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "body", "data", "created_at", "read_at"]
        read_only_fields = fields


class UnreadCountSerializer(Serializer):
    count = serializers.IntegerField()


class KindPreferenceSerializer(Serializer):
    email = serializers.BooleanField()


class PreferencesSerializer(Serializer):
    """`{kind: {"email": bool}}` for every kind; PATCH any subset. Validated: `{kind: bool}`."""

    def get_fields(self) -> dict[str, Any]:
        # One field per kind, so the schema documents each and the base serializer refuses others.
        return {
            kind.value: KindPreferenceSerializer(required=False, help_text=f"{kind.label}: also by email?")
            for kind in Kind
        }

    def to_internal_value(self, data: Any) -> dict[str, bool]:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected an object of kinds."]})
        chosen = super().to_internal_value(data)
        return {kind: choice["email"] for kind, choice in chosen.items()}

    def to_representation(self, instance: Any) -> Any:
        return instance


class BroadcastSerializer(Serializer):
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=10000, allow_blank=True, default="")
    user_ids = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=100000)
    role = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class BroadcastAcceptedSerializer(Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
