"""Shapes of the accounts API: they check input, services do the rest."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.serializers import ModelSerializer, Serializer

from .api_shapes import user_admin_api_shape, user_api_shape
from .models import AuthSession, RoleRequest, UsernameValidator


def password_field(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(
        write_only=True, max_length=128, trim_whitespace=False, style={"input_type": "password"}, **kwargs
    )


def username_field(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=150, validators=[UsernameValidator()], **kwargs)


class _BlankIsNullEmailField(serializers.EmailField):
    """An address that may be blank in the row and is `null` in the body."""

    def to_representation(self, value: Any) -> str | None:  # type: ignore[override]
        return str(value) if value else None


class UserSerializer(Serializer):
    """A user as `/users/me` shows it; reads a `User` or a cached `Principal` alike.

    The fields describe the shape for the schema; the body is `accounts.api_shapes.user_api_shape`,
    the one function every door builds a user with.
    """

    id = serializers.UUIDField(read_only=True)
    username = serializers.CharField(read_only=True)
    email = serializers.EmailField(read_only=True)
    email_verified = serializers.BooleanField(read_only=True)
    email_pending = _BlankIsNullEmailField(
        read_only=True, allow_null=True, help_text="A new address waiting for its link to be used."
    )
    full_name = serializers.CharField(read_only=True)
    roles = serializers.ListField(child=serializers.CharField(), read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    is_admin = serializers.BooleanField(read_only=True)
    mfa = serializers.BooleanField(
        source="mfa_enabled", read_only=True, help_text="TOTP is on for the account."
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return user_api_shape(instance)


class AdminUserSerializer(UserSerializer):
    """What administrators see of a user: also staff flags and the deletion mark."""

    is_staff = serializers.BooleanField(read_only=True)
    is_superuser = serializers.BooleanField(read_only=True)
    deleted_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_login = serializers.DateTimeField(read_only=True, allow_null=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return user_admin_api_shape(instance)


class RegisterSerializer(Serializer):
    username = username_field()
    email = serializers.EmailField(max_length=254)
    password = password_field()
    full_name = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


def _oauth2_parameter(help_text: str) -> serializers.CharField:
    return serializers.CharField(
        max_length=2048, required=False, allow_blank=True, write_only=True, help_text=help_text
    )


class LoginSerializer(Serializer):
    """JSON `{username, password}` or the OAuth2 password form (`grant_type=password`).

    OAuth2 clients (RFC 6749, 4.3.2 and 2.3.1) may also send `scope` and their
    `client_id` / `client_secret`: accepted, and not used.
    """

    username = serializers.CharField(max_length=254, help_text="The username or the email.")
    password = password_field()
    grant_type = serializers.ChoiceField(choices=["password"], required=False)
    scope = _oauth2_parameter("OAuth2 password form: accepted and not used.")
    client_id = _oauth2_parameter("OAuth2 client authentication: accepted and not used.")
    client_secret = _oauth2_parameter("OAuth2 client authentication: accepted and not used.")


class TokenPairSerializer(Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")
    session_id = serializers.UUIDField()


class RefreshSerializer(Serializer):
    refresh = serializers.CharField(max_length=4096)


class RefreshedPairSerializer(Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField()


class VerifySerializer(Serializer):
    token = serializers.CharField(max_length=4096)


class VerifiedSerializer(Serializer):
    valid = serializers.BooleanField()
    user_id = serializers.UUIDField()
    session_id = serializers.UUIDField()
    exp = serializers.IntegerField()


class SessionSerializer(ModelSerializer):
    current = serializers.SerializerMethodField()

    class Meta:
        model = AuthSession
        fields = ["id", "created_at", "last_used_at", "ip", "user_agent", "current"]

    def get_current(self, session: AuthSession) -> bool:
        return str(session.id) == getattr(self.context["request"].user, "session_id", None)


class ProfileUpdateSerializer(Serializer):
    """The profile fields."""

    username = username_field(required=False)
    email = serializers.EmailField(max_length=254, required=False)
    full_name = serializers.CharField(max_length=255, required=False, allow_blank=True)


class MeUpdateSerializer(ProfileUpdateSerializer):
    """What a user may change about themselves; a new `email` needs `current_password`."""

    current_password = password_field(required=False, help_text="Required to change the email.")


class PasswordConfirmSerializer(Serializer):
    # Required for an account with a password (the service says so, 400); an account made by
    # social login has none to send, and proves itself with a recent session instead.
    password = password_field(required=False)


class AdminUserCreateSerializer(RegisterSerializer):
    password = password_field(
        required=False,
        allow_null=True,
        default=None,  # omitted is null: the service is always told (a missing key was a 500)
        help_text="Omit to create the account without a usable password.",
    )
    roles = serializers.ListField(child=serializers.CharField(max_length=150), required=False, max_length=50)
    is_active = serializers.BooleanField(required=False, default=True)


class AdminUserUpdateSerializer(ProfileUpdateSerializer):
    roles = serializers.ListField(child=serializers.CharField(max_length=150), required=False, max_length=50)
    is_active = serializers.BooleanField(required=False)


class PasswordChangeSerializer(Serializer):
    old_password = password_field()
    new_password = password_field()


class PasswordResetSerializer(Serializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetConfirmSerializer(Serializer):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=128)
    new_password = password_field()


class EmailVerifySerializer(Serializer):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=128)


class PasswordFirstSetSerializer(Serializer):
    new_password = password_field()


class DetailSerializer(Serializer):
    detail = serializers.CharField()


class RoleSerializer(Serializer):
    name = serializers.CharField()
    description = serializers.CharField()


class RoleRequestSerializer(ModelSerializer):
    user = serializers.UUIDField(source="user_id", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    role = serializers.CharField(source="role.name", read_only=True)
    decided_by = serializers.UUIDField(source="decided_by_id", read_only=True, allow_null=True)

    class Meta:
        model = RoleRequest
        fields = [
            "id",
            "user",
            "username",
            "role",
            "reason",
            "status",
            "created_at",
            "decided_at",
            "decided_by",
            "comment",
        ]
        read_only_fields = fields


class RoleRequestCreateSerializer(Serializer):
    role = serializers.CharField(max_length=150)
    reason = serializers.CharField(max_length=2000, allow_blank=True, default="")


class DecisionSerializer(Serializer):
    comment = serializers.CharField(max_length=2000, allow_blank=True, default="")
