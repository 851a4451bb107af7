"""Shapes of the MFA endpoints (API.md, "Multi-factor authentication"): they check input, the
services in `accounts.services.mfa*` do the rest."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.serializers import Serializer

from .serializers import password_field


def code_field(help_text: str, **kwargs: Any) -> serializers.CharField:
    """A code as typed: generous for 6 digits with spaces, or a recovery code with dashes; bounded."""
    return serializers.CharField(max_length=64, help_text=help_text, **kwargs)


class MFAStatusSerializer(Serializer):
    totp = serializers.BooleanField(help_text="TOTP is on.")
    recovery_codes_left = serializers.IntegerField(help_text="Unused recovery codes.")
    # API.md's field name; DRF's metaclass takes declared fields off the class, so it does not
    # shadow `Field.required` at run time (the stubs cannot know that).
    required = serializers.BooleanField(  # type: ignore[assignment]
        help_text="A role of the user demands MFA (`MFA_REQUIRED_ROLES`)."
    )


class TOTPEnrollSerializer(Serializer):
    current_password = password_field(
        required=False, help_text="Required for an account with a password (re-authentication)."
    )


class TOTPEnrollmentSerializer(Serializer):
    secret = serializers.CharField(help_text="Base32, 160 bits (RFC 6238: SHA-1, 6 digits, 30 s).")
    otpauth_uri = serializers.CharField(help_text="The `otpauth://totp/...` URI for an authenticator app.")


class TOTPConfirmSerializer(Serializer):
    code = code_field("A code from the authenticator app.")


class MFACodeSerializer(Serializer):
    code = code_field("A code from the authenticator app, or one of the recovery codes.")


class TOTPDisableSerializer(MFACodeSerializer):
    current_password = password_field(
        required=False, help_text="Required for an account with a password (re-authentication)."
    )


class RecoveryCodesSerializer(Serializer):
    recovery_codes = serializers.ListField(
        child=serializers.CharField(), help_text="Ten single-use codes, shown this once."
    )


class MFAVerifySerializer(Serializer):
    """`{mfa_token, code}` or `{mfa_token, recovery_code}`: one of the two."""

    mfa_token = serializers.CharField(max_length=256, help_text="From the 403 `mfa_required` of the login.")
    code = code_field("A code from the authenticator app.", required=False)
    recovery_code = code_field("One of the recovery codes.", required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("code" in attrs) == ("recovery_code" in attrs):
            raise serializers.ValidationError(
                {"non_field_errors": ["Send either `code` or `recovery_code` (one of them)."]}
            )
        return attrs
