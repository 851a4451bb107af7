"""Bearer-token authentication that also checks the session and the user.

SimpleJWT alone trusts an access token until its `exp`; here every request
also checks that the token's session is live and its user active, through
the read-through cache (`accounts.cache`), so logout, revocation,
deactivation and deletion take effect on the very next request.

`bearer_principal` is that check on its own: DRF's authentication class below
and the lean views (`accounts.hot_path_views`) both call it, so they cannot drift apart.
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
from .tokens import AccessClaims, access_claims


def principal(request: Request) -> Principal:
    """The authenticated caller of a view that requires authentication."""
    user = request.user
    assert isinstance(user, Principal)
    return user


def _invalid() -> exceptions.AuthenticationFailed:
    return exceptions.AuthenticationFailed("Token is invalid or expired.", code="token_not_valid")


def verified_claims(raw_token: str) -> AccessClaims:
    """The token's claims, or 401 `token_not_valid`."""
    try:
        return access_claims(raw_token)
    except TokenError:
        raise _invalid() from None


def session_principal(claims: AccessClaims) -> Principal:
    """The caller if the token's session is live and its user may sign in, else 401 `session_revoked`."""
    state = load_auth_state(session_id=claims.session_id, user_id=claims.user_id)
    if not services.session_is_live(state, claims.user_id):
        raise exceptions.AuthenticationFailed("The session has ended.", code="session_revoked")
    if state.needs_touch and settings.SESSION_TOUCH_SECONDS:
        services.session_touch(session_id=claims.session_id)
    assert state.principal is not None
    return state.principal


def bearer_principal(raw_token: str) -> Principal:
    return session_principal(verified_claims(raw_token))


def _malformed(detail: str) -> exceptions.AuthenticationFailed:
    return exceptions.AuthenticationFailed(detail, code="bad_authorization_header")


class SessionJWTAuthentication(JWTAuthentication):
    www_authenticate_realm = "api"

    def get_raw_token(self, header: bytes) -> bytes | None:
        """The token of `Bearer <token>`; a malformed header is a 401 that says so in a sentence.

        SimpleJWT's own refusal carries a dict as its detail, which reached the
        client as a dumped Python object, and it let another scheme through as
        no header at all. No header, or an empty one, is still no credentials.
        """
        parts = header.split()
        if not parts:
            return None
        if parts[0] != b"Bearer":
            raise _malformed(
                "The Authorization header must be 'Bearer <token>'; no other scheme is accepted."
            )
        if len(parts) == 1:
            raise _malformed("The Authorization header has no token: send 'Bearer <token>'.")
        if len(parts) > 2:
            raise _malformed("The Authorization header must hold one token: 'Bearer <token>'.")
        return parts[1]

    def authenticate(self, request: Request) -> tuple[Principal, AccessClaims] | None:  # type: ignore[override]
        header = self.get_header(request)
        if header is None:
            return None
        raw_token = self.get_raw_token(header)
        if raw_token is None:
            return None
        claims = verified_claims(raw_token.decode("latin-1"))
        return session_principal(claims), claims

    def get_validated_token(self, raw_token: bytes) -> Any:
        return verified_claims(raw_token.decode("latin-1"))

    def get_user(self, validated_token: Any) -> Principal:  # type: ignore[override]
        return session_principal(validated_token)
