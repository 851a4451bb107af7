"""What the platform's other services read to trust our tokens, in the forms their libraries take.

- The OpenID Connect discovery document (`/.well-known/openid-configuration`): Keycloak's, Auth0's
  and django-oauth-toolkit's give a resource server its `issuer` and `jwks_uri` this way, and
  Spring's `JwtDecoders.fromIssuerLocation`, Microsoft.IdentityModel, `express-oauth2-jwt-bearer`
  and Authlib start from it.
- The body of an RFC 7009 revocation request (`/api/v1/auth/revoke`).

This service is an OAuth 2.0 token issuer for first-party clients (the password grant at
`/auth/login`, refresh tokens), not a full OpenID Provider: there is no authorization endpoint
and no ID token. The document publishes what exists and nothing else:

- `response_types_supported` is required by RFC 8414 and OIDC Discovery, but its values are
  `response_type`s of an authorization endpoint; with none, the list is empty rather than a
  promise of a flow that does not exist.
- `id_token_signing_alg_values_supported` (required by OIDC Discovery) names the algorithm of the
  only JWTs issued here, the access tokens: resource-server libraries read the signing algorithm
  from it, as they do from Keycloak's.
- `token_endpoint_auth_methods_supported` is `none`: the clients are public, and a
  `client_id`/`client_secret` sent to the token endpoint is accepted and not used (API.md).
- `grant_types_supported` is `password` (the token endpoint's form) and `refresh_token`, whose
  tokens are spent at `/api/v1/auth/refresh` (JSON `{refresh}`, API.md), not at the token endpoint.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from core.serializers import Serializer

from .tokens import signing_material

#: The claims an access token may carry (API.md, Accounts and tokens).
CLAIMS_SUPPORTED = ["iss", "aud", "sub", "sid", "roles", "exp", "iat", "jti", "auth_time", "amr"]

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"
TOKEN_PATH = "/api/v1/auth/login"  # noqa: S105 (a path, not a secret)
REVOCATION_PATH = "/api/v1/auth/revoke"


def _url(path: str) -> str:
    """An absolute URL under the issuer: `JWT_ISSUER` is the service's public base URL. A trailing
    `/` of the issuer is dropped first, as OIDC Discovery 1.0 (section 4) says to do for its path."""
    return str(settings.JWT_ISSUER).rstrip("/") + path


def discovery_document() -> dict[str, Any]:
    """The OpenID Connect discovery document (RFC 8414 metadata with OIDC Discovery's fields)."""
    algorithm = signing_material()[0]
    return {
        "issuer": settings.JWT_ISSUER,
        "jwks_uri": _url(JWKS_PATH),
        "token_endpoint": _url(TOKEN_PATH),
        "revocation_endpoint": _url(REVOCATION_PATH),
        "grant_types_supported": ["password", "refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [algorithm],
        "claims_supported": CLAIMS_SUPPORTED,
        "service_documentation": _url("/api/docs/"),
    }


class RevocationSerializer(Serializer):
    """RFC 7009, section 2.1: `token`, and the optional `token_type_hint`. A public client may also
    send its `client_id` (RFC 6749, 2.3.1): accepted and not used, as the token endpoint does."""

    token = serializers.CharField(max_length=4096)
    token_type_hint = serializers.CharField(
        max_length=64,
        required=False,
        help_text="`access_token` or `refresh_token`: a hint only; either kind is looked for.",
    )
    client_id = serializers.CharField(
        max_length=255, required=False, help_text="OAuth2 client identification: accepted and not used."
    )
