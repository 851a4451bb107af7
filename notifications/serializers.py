from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import Kind, Notification


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "body", "data", "created_at", "read_at"]
        read_only_fields = fields


class UnreadCountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class KindPreferenceSerializer(serializers.Serializer):
    email = serializers.BooleanField()


class PreferencesSerializer(serializers.Serializer):
    """`{kind: {"email": bool}}` for every kind; PATCH any subset."""

    def to_internal_value(self, data: Any) -> dict[str, bool]:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected an object of kinds."]})
        errors: dict[str, Any] = {}
        changes: dict[str, bool] = {}
        for kind, choice in data.items():
            if kind not in Kind.values:
                errors[kind] = [f"Unknown kind. Kinds: {', '.join(Kind.values)}."]
                continue
            field = KindPreferenceSerializer(data=choice)
            if field.is_valid():
                changes[kind] = field.validated_data["email"]
            else:
                errors[kind] = field.errors
        if errors:
            raise serializers.ValidationError(errors)
        return changes

    def to_representation(self, instance: Any) -> Any:
        return instance


class BroadcastSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=10000, allow_blank=True, default="")
    user_ids = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=100000)
    role = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class BroadcastAcceptedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
