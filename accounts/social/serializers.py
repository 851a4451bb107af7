"""Shapes of the social login API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.serializers import Serializer

from ..serializers import password_field
from .backends import PROVIDER_OF_BACKEND


class LinkProofSerializer(Serializer):
    """`current_password`: with the caller's access token (a link), the proof the link needs.

    The view reads it for the link (`SocialLoginView.link_request`); it is dropped
    from the validated data, which goes to the provider's check (Telegram did not sign it).
    """

    current_password = password_field(
        required=False, help_text="With the caller's access token: proves the caller (re-authentication)."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.pop("current_password", None)
        return attrs


class YandexLoginSerializer(LinkProofSerializer):
    """Either a Yandex OAuth token, or an authorization code with the redirect URI it was issued for."""

    access_token = serializers.CharField(max_length=4096, required=False)
    code = serializers.CharField(max_length=4096, required=False)
    redirect_uri = serializers.CharField(max_length=2048, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        has_token, has_code = "access_token" in attrs, "code" in attrs
        if has_token == has_code:
            raise serializers.ValidationError("Send either access_token, or code and redirect_uri.")
        if has_code and not attrs.get("redirect_uri"):
            raise serializers.ValidationError({"redirect_uri": ["Required with code."]})
        return attrs


def _widget_text(**kwargs: Any) -> serializers.CharField:
    # Exactly as sent: Telegram signed the value with its spaces.
    return serializers.CharField(max_length=2048, required=False, trim_whitespace=False, **kwargs)


class TelegramLoginSerializer(LinkProofSerializer):
    """The Telegram Login Widget's fields (any other field is a 400, like everywhere)."""

    id = serializers.IntegerField(min_value=1)
    first_name = _widget_text(allow_blank=True)
    last_name = _widget_text(allow_blank=True)
    username = _widget_text(allow_blank=True)
    photo_url = _widget_text(allow_blank=True)
    auth_date = serializers.IntegerField(min_value=0)
    hash = serializers.CharField(max_length=128)


class IdentitySerializer(Serializer):
    """A linked identity (a `UserSocialAuth` row)."""

    provider = serializers.SerializerMethodField(help_text="yandex or telegram")
    uid = serializers.CharField(read_only=True, help_text="The user's id at the provider.")
    linked_at = serializers.DateTimeField(source="created", read_only=True)

    @extend_schema_field(OpenApiTypes.STR)
    def get_provider(self, obj: Any) -> str:
        return PROVIDER_OF_BACKEND.get(obj.provider, obj.provider)
