"""Bearer-token authentication that also checks the session and the user.

SimpleJWT alone trusts an access token until its `exp`; here every request
also checks that the token's session is live and its user active, through
the read-through cache (`accounts.cache`), so logout, revocation,
deactivation and deletion take effect on the very next request.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import TokenError

from . import services
from .cache import Principal, load_auth_state
from .tokens import SessionAccessToken


def principal(request: Request) -> Principal:
    """The authenticated caller of a view that requires authentication."""
    user = request.user
    assert isinstance(user, Principal)
    return user


class SessionJWTAuthentication(JWTAuthentication):
    www_authenticate_realm = "api"

    def authenticate(self, request: Request) -> tuple[Principal, SessionAccessToken] | None:  # type: ignore[override]
        header = self.get_header(request)
        if header is None:
            return None
        raw_token = self.get_raw_token(header)
        if raw_token is None:
            return None
        token = self.get_validated_token(raw_token)
        return self.get_user(token), token

    def get_validated_token(self, raw_token: bytes) -> SessionAccessToken:  # type: ignore[override]
        try:
            token = SessionAccessToken(raw_token)  # type: ignore[arg-type]
        except TokenError:
            raise self._invalid() from None
        if "sid" not in token or "sub" not in token:
            raise self._invalid()
        return token

    @staticmethod
    def _invalid() -> exceptions.AuthenticationFailed:
        return exceptions.AuthenticationFailed("Token is invalid or expired.", code="token_not_valid")

    def get_user(self, validated_token: Any) -> Principal:  # type: ignore[override]
        session_id, user_id = str(validated_token["sid"]), str(validated_token["sub"])
        state = load_auth_state(session_id=session_id, user_id=user_id)
        if not services.session_is_live(state, user_id):
            raise exceptions.AuthenticationFailed("The session has ended.", code="session_revoked")
        if state.needs_touch and settings.SESSION_TOUCH_SECONDS:
            services.session_touch(session_id=session_id)
        assert state.principal is not None
        return state.principal
