"""Shapes of the social login API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .backends import PROVIDER_OF_BACKEND


class YandexLoginSerializer(serializers.Serializer):
    """Either a Yandex OAuth token, or an authorization code with the redirect URI it was issued for."""

    access_token = serializers.CharField(max_length=4096, required=False)
    code = serializers.CharField(max_length=4096, required=False)
    redirect_uri = serializers.CharField(max_length=2048, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        has_token, has_code = "access_token" in attrs, "code" in attrs
        if has_token == has_code:
            raise serializers.ValidationError("Send either access_token, or code and redirect_uri.")
        if has_code and not attrs.get("redirect_uri"):
            raise serializers.ValidationError({"redirect_uri": ["Required with code."]})
        return attrs


def _widget_text(**kwargs: Any) -> serializers.CharField:
    # Exactly as sent: Telegram signed the value with its spaces.
    return serializers.CharField(max_length=2048, required=False, trim_whitespace=False, **kwargs)


class TelegramLoginSerializer(serializers.Serializer):
    """The Telegram Login Widget's fields; any other field is ignored (and not signed)."""

    id = serializers.IntegerField(min_value=1)
    first_name = _widget_text(allow_blank=True)
    last_name = _widget_text(allow_blank=True)
    username = _widget_text(allow_blank=True)
    photo_url = _widget_text(allow_blank=True)
    auth_date = serializers.IntegerField(min_value=0)
    hash = serializers.CharField(max_length=128)


class IdentitySerializer(serializers.Serializer):
    """A linked identity (a `UserSocialAuth` row)."""

    provider = serializers.SerializerMethodField(help_text="yandex or telegram")
    uid = serializers.CharField(read_only=True, help_text="The user's id at the provider.")
    linked_at = serializers.DateTimeField(source="created", read_only=True)

    @extend_schema_field(OpenApiTypes.STR)
    def get_provider(self, obj: Any) -> str:
        return PROVIDER_OF_BACKEND.get(obj.provider, obj.provider)
