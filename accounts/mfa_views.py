"""The MFA endpoints (API.md, "Multi-factor authentication"): `/auth/mfa...`.

Token endpoints that are not resources, so plain views; each parses, calls one service of
`accounts.services.mfa*` and shapes the answer. Every answer is `Cache-Control: no-store`
(`core.middleware`): some carry a secret, recovery codes or tokens.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.http import client_ip, user_agent

from .authentication import principal
from .mfa_serializers import (
    MFACodeSerializer,
    MFAStatusSerializer,
    MFAVerifySerializer,
    RecoveryCodesSerializer,
    TOTPConfirmSerializer,
    TOTPDisableSerializer,
    TOTPEnrollmentSerializer,
    TOTPEnrollSerializer,
)
from .serializers import TokenPairSerializer
from .services import mfa, mfa_login
from .throttles import LoginAddressThrottle
from .views import PublicAPIView, _session_id, _valid


class MFAStatusView(APIView):
    """Whether TOTP is on, how many recovery codes are left, and whether a role demands MFA."""

    @extend_schema(responses={200: MFAStatusSerializer})
    def get(self, request: Request) -> Response:
        state = mfa.mfa_status(user_id=principal(request).id)
        return Response(MFAStatusSerializer(state).data)


class TOTPView(APIView):
    """Enroll a TOTP authenticator (POST), or turn TOTP off (DELETE)."""

    @extend_schema(request=TOTPEnrollSerializer, responses={200: TOTPEnrollmentSerializer})
    def post(self, request: Request) -> Response:
        data = _valid(TOTPEnrollSerializer, request)
        enrollment = mfa.mfa_totp_enroll(
            user_id=principal(request).id,
            session_id=_session_id(request),
            current_password=data.get("current_password"),
        )
        return Response(TOTPEnrollmentSerializer(enrollment).data)

    @extend_schema(request=TOTPDisableSerializer, responses={204: None})
    def delete(self, request: Request) -> Response:
        data = _valid(TOTPDisableSerializer, request)
        mfa.mfa_totp_disable(
            user_id=principal(request).id,
            session_id=_session_id(request),
            current_password=data.get("current_password"),
            code=data["code"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class TOTPConfirmView(APIView):
    """The first code from the app turns TOTP on; the answer holds the recovery codes, this once."""

    @extend_schema(request=TOTPConfirmSerializer, responses={200: RecoveryCodesSerializer})
    def post(self, request: Request) -> Response:
        data = _valid(TOTPConfirmSerializer, request)
        codes = mfa.mfa_totp_confirm(user_id=principal(request).id, code=data["code"])
        return Response(RecoveryCodesSerializer({"recovery_codes": codes}).data)


class RecoveryCodesView(APIView):
    """A new set of recovery codes; the old set stops working."""

    @extend_schema(request=MFACodeSerializer, responses={200: RecoveryCodesSerializer})
    def post(self, request: Request) -> Response:
        data = _valid(MFACodeSerializer, request)
        codes = mfa.mfa_recovery_codes_regenerate(user_id=principal(request).id, code=data["code"])
        return Response(RecoveryCodesSerializer({"recovery_codes": codes}).data)


class MFAVerifyView(PublicAPIView):
    """The second step of a login that answered 403 `mfa_required`: its `mfa_token` and a code."""

    throttle_classes = [LoginAddressThrottle]

    @extend_schema(request=MFAVerifySerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        data = _valid(MFAVerifySerializer, request)
        pair = mfa_login.mfa_challenge_verify(
            mfa_token=data["mfa_token"],
            code=data.get("code"),
            recovery_code=data.get("recovery_code"),
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
        return Response(TokenPairSerializer(pair).data)
