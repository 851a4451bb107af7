from __future__ import annotations

from rest_framework import serializers

from core.serializers import ModelSerializer, Serializer

from ..models import CHAT_METADATA_MAX_BYTES, ChatSession
from .fields import LimitedJSONField


class ChatSessionSerializer(ModelSerializer):
    class Meta:
        model = ChatSession
        fields = ["id", "title", "external_id", "metadata", "created_at", "updated_at", "last_activity_at"]
        read_only_fields = fields


class ChatSessionCreateSerializer(Serializer):
    external_id = serializers.CharField(max_length=255, help_text="The agent service's id of the session.")
    title = serializers.CharField(max_length=255, allow_blank=True, default="")
    metadata = LimitedJSONField(max_bytes=CHAT_METADATA_MAX_BYTES, object_only=True, default=dict)


class ChatSessionUpdateSerializer(Serializer):
    title = serializers.CharField(max_length=255, allow_blank=True, required=False)
    metadata = LimitedJSONField(max_bytes=CHAT_METADATA_MAX_BYTES, object_only=True, required=False)
    touch = serializers.BooleanField(
        required=False, default=False, help_text="Move the session to the front (activity now)."
    )
    last_activity_at = serializers.DateTimeField(
        required=False, help_text="Activity at this time; a time earlier than the stored one is ignored."
    )
