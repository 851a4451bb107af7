"""Tokens any OIDC library verifies (issue 25): `iss`, `aud`, `auth_time`, `amr`; the discovery
document; the JWKS's caching headers; RFC 7009 revocation. Proven with the tools the platform's
other services use: PyJWT's `PyJWKClient` from the discovery document, joserfc (Authlib's JOSE
engine) with a claims registry, and Authlib's metadata validators."""

from __future__ import annotations

import inspect
import json
import time
import urllib.request
from datetime import timedelta

import jwt
import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone
from joserfc import jwt as jose_jwt
from joserfc.errors import InvalidClaimError
from joserfc.jwk import KeySet
from rest_framework.test import APIClient

from accounts import tokens
from accounts.models import AuditEvent, AuthSession
from accounts.tests.social_support import BOT_TOKEN, TELEGRAM, telegram_payload
from accounts.tests.support import bearer
from core.public_documents import MAX_AGE_SECONDS

DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/.well-known/jwks.json"
ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/refresh"
REVOKE = "/api/v1/auth/revoke"
FORM = "application/x-www-form-urlencoded"


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def signed(payload: dict) -> str:
    """`payload` signed with the service's own key: only its claims can be wrong."""
    return tokens.token_backend().encode(payload)


@pytest.fixture
def rs256(settings):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings.JWT_PRIVATE_KEY = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return settings


# --- the claims ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_password_login_carries_iss_aud_auth_time_and_amr_pwd(settings, login, user):
    settings.JWT_ISSUER, settings.JWT_AUDIENCE = "https://users.example.test", "the-platform"
    body = login(user)
    access = claims(body["access"])
    session = AuthSession.objects.get(id=body["session_id"])

    assert access["iss"] == "https://users.example.test"
    assert access["aud"] == "the-platform"
    assert access["amr"] == ["pwd"]
    assert access["auth_time"] == int(session.created_at.timestamp())
    assert access["auth_time"] <= access["iat"]
    refresh = claims(body["refresh"])
    # The refresh token's audience is the issuer itself (as Keycloak's are): no resource server takes it.
    assert refresh["iss"] == refresh["aud"] == "https://users.example.test"
    assert refresh["amr"] == ["pwd"]


@pytest.mark.django_db
def test_a_refresh_keeps_auth_time_and_amr(login, user):
    body = login(user)
    time.sleep(1.1)  # a new `iat`, so that a copied auth_time would show
    pair = APIClient().post(REFRESH, {"refresh": body["refresh"]}, format="json").json()
    before, after = claims(body["access"]), claims(pair["access"])

    assert after["iat"] > before["iat"]
    assert (after["auth_time"], after["amr"]) == (before["auth_time"], ["pwd"])
    assert claims(pair["refresh"])["amr"] == ["pwd"]


@pytest.mark.django_db
def test_a_social_login_names_its_provider_in_amr(settings):
    settings.TELEGRAM_BOT_TOKEN = BOT_TOKEN
    response = APIClient().post(TELEGRAM, telegram_payload(), format="json")

    assert response.status_code == 200, response.content
    assert claims(response.json()["access"])["amr"] == ["telegram"]
    assert claims(response.json()["refresh"])["amr"] == ["telegram"]


def test_the_amr_values_are_rfc_8176_names():
    assert (tokens.AMR_PASSWORD, tokens.AMR_OTP, tokens.AMR_MFA) == ("pwd", "otp", "mfa")


@pytest.mark.django_db
def test_the_verified_claims_carry_amr_for_the_checks_that_need_it(login, user):
    assert tokens.access_claims(login(user)["access"]).amr == ("pwd",)


# --- refusals and the tokens issued before the claims -----------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({}, True),
        ({"iss": "https://someone-else.example"}, False),
        ({"aud": "another-service"}, False),
        ({"aud": ["another-service", "platform"]}, True),  # a list that names us (RFC 7519, 4.1.3)
        ({"aud": ["another-service"]}, False),
        ({"iss": None}, False),  # one claim without the other: no token this service ever made
        ({"aud": None}, False),
        ({"iss": None, "aud": None, "amr": None}, True),  # issued before the claims existed
    ],
    ids=["as-issued", "other-iss", "other-aud", "aud-list-with-us", "aud-list-without-us",
         "no-iss", "no-aud", "pre-claims"],
)  # fmt: skip
def test_only_our_issuer_and_audience_are_accepted_and_tokens_from_before_the_claims_still_are(
    settings, login, user, change, accepted
):
    settings.JWT_AUDIENCE = "platform"
    payload = claims(login(user)["access"])
    for name, value in change.items():
        if value is None:
            payload.pop(name)
        else:
            payload[name] = value
    response = bearer(signed(payload)).get(ME)

    assert response.status_code == (200 if accepted else 401), response.content
    verified = APIClient().post("/api/v1/auth/verify", {"token": signed(payload)}, format="json")
    assert verified.status_code == (200 if accepted else 401)


@pytest.mark.django_db
def test_a_refresh_token_from_before_the_claims_still_refreshes_into_a_pair_that_has_them(
    settings, login, user
):
    body = login(user)
    old_refresh = claims(body["refresh"])
    for name in ("iss", "aud", "amr"):
        old_refresh.pop(name)
    legacy = signed(old_refresh)
    # The session's stored hash is of the token as issued: this one stands for it.
    AuthSession.objects.filter(id=body["session_id"]).update(refresh_token_hash=tokens.hash_token(legacy))

    response = APIClient().post(REFRESH, {"refresh": legacy}, format="json")

    assert response.status_code == 200, response.content
    access = claims(response.json()["access"])
    assert (access["iss"], access["aud"]) == (settings.JWT_ISSUER, settings.JWT_AUDIENCE)
    assert "amr" not in access  # how that session was opened is not known


@pytest.mark.django_db
def test_a_refresh_token_for_another_issuer_is_refused(login, user):
    refresh = claims(login(user)["refresh"])
    refresh["iss"] = refresh["aud"] = "https://someone-else.example"
    assert APIClient().post(REFRESH, {"refresh": signed(refresh)}, format="json").status_code == 401


@pytest.mark.django_db
def test_a_change_of_issuer_reaches_tokens_already_verified(settings, login, user):
    access = login(user)["access"]
    assert bearer(access).get(ME).status_code == 200  # now in the verified-token map
    settings.JWT_ISSUER = "https://moved.example"
    assert bearer(access).get(ME).status_code == 401


@pytest.mark.django_db
def test_a_resource_server_checking_aud_refuses_a_refresh_token(settings, login, user):
    body = login(user)
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(body["refresh"], settings.SECRET_KEY, algorithms=["HS256"], audience=settings.JWT_AUDIENCE)
    jwt.decode(body["access"], settings.SECRET_KEY, algorithms=["HS256"], audience=settings.JWT_AUDIENCE)


# --- the discovery document -----------------------------------------------------------------------


@pytest.mark.django_db
def test_discovery_names_the_issuer_its_keys_and_endpoints(client, settings):
    settings.JWT_ISSUER = "https://users.example.test/"
    response = client.get(DISCOVERY)

    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == "https://users.example.test/"  # exactly what tokens carry in `iss`
    assert document["jwks_uri"] == "https://users.example.test/.well-known/jwks.json"
    assert document["token_endpoint"] == "https://users.example.test/api/v1/auth/login"
    assert document["revocation_endpoint"] == "https://users.example.test/api/v1/auth/revoke"
    assert document["grant_types_supported"] == ["password", "refresh_token"]
    assert document["subject_types_supported"] == ["public"]
    assert document["id_token_signing_alg_values_supported"] == ["HS256"]
    assert {"iss", "aud", "sub", "exp", "iat", "auth_time", "amr", "sid", "roles"} <= set(
        document["claims_supported"]
    )
    assert document["token_endpoint_auth_methods_supported"] == ["none"]


@pytest.mark.django_db
def test_discovery_names_rs256_when_a_key_is_configured(client, rs256):
    assert client.get(DISCOVERY).json()["id_token_signing_alg_values_supported"] == ["RS256"]


@pytest.mark.django_db
def test_authlib_validates_the_discovery_document(client, rs256):
    rs256.JWT_ISSUER = "https://users.example.test"
    document = client.get(DISCOVERY).json()

    metadata = AuthorizationServerMetadata(document)
    for key in metadata.REGISTRY_KEYS:
        if key == "response_types_supported":
            continue  # no authorization endpoint, so no response type: an empty list (accounts/oidc.py)
        getattr(metadata, f"validate_{key}")()
    assert document["response_types_supported"] == []
    oidc = OpenIDProviderMetadata(document)
    for key in ("jwks_uri", "subject_types_supported", "id_token_signing_alg_values_supported",
                "claims_supported", "claim_types_supported"):  # fmt: skip
        getattr(oidc, f"validate_{key}")()


@pytest.mark.django_db
@pytest.mark.parametrize("path", [DISCOVERY, JWKS])
def test_the_public_documents_are_cacheable_and_open_to_every_origin(client, path):
    response = client.get(path, HTTP_ORIGIN="https://anywhere.example")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    # A directive list and nothing else (django-oauth-toolkit's carries "Cache-Control:" in its value).
    assert directives == {"public", f"max-age={MAX_AGE_SECONDS}"}
    # No longer than PyJWKClient keeps a key set by default, so its default is what the header says.
    assert inspect.signature(jwt.PyJWKClient).parameters["lifespan"].default == MAX_AGE_SECONDS


@pytest.mark.django_db
@pytest.mark.parametrize("path", [DISCOVERY, JWKS])
def test_a_preflight_from_any_origin_is_answered(client, path):
    response = client.options(
        path,
        HTTP_ORIGIN="https://anywhere.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="if-none-match",
    )

    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "GET" in response["Access-Control-Allow-Methods"]
    assert response["Access-Control-Allow-Headers"] == "if-none-match"


@pytest.mark.django_db
@pytest.mark.parametrize("path", [DISCOVERY, JWKS])
def test_another_method_is_a_json_405(client, path):
    response = client.post(path, {}, content_type="application/json")

    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "POST" not allowed.', "code": "method_not_allowed"}
    assert "GET" in response["Allow"]


# --- proof with the verifiers other services run --------------------------------------------------


def _fetch_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 (the live server's http URL)
        return json.loads(answer.read())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_resource_server_built_from_the_discovery_document_accepts_a_login_and_refuses_another_aud(
    rs256, live_server, login, user
):
    """What another service does with nothing but the issuer's URL: discovery, then the JWKS."""
    rs256.JWT_ISSUER = live_server.url
    access = login(user)["access"]

    document = _fetch_json(f"{live_server.url}{DISCOVERY}")
    assert document["issuer"] == live_server.url
    algorithms = document["id_token_signing_alg_values_supported"]

    # PyJWT, as a Python service verifies.
    keys = jwt.PyJWKClient(document["jwks_uri"])
    verified = jwt.decode(
        access,
        keys.get_signing_key_from_jwt(access).key,
        algorithms=algorithms,
        issuer=document["issuer"],
        audience=rs256.JWT_AUDIENCE,
        options={"require": ["iss", "aud", "exp", "sub"]},
    )
    assert verified["sub"] == str(user.id)
    assert verified["amr"] == ["pwd"]

    # joserfc (the JOSE engine of Authlib) with a claims registry: iss and aud essential.
    key_set = KeySet.import_key_set(_fetch_json(document["jwks_uri"]))
    registry = jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": document["issuer"]},
        aud={"essential": True, "value": rs256.JWT_AUDIENCE},
    )
    registry.validate(jose_jwt.decode(access, key_set, algorithms=algorithms).claims)

    # The same key, the same issuer, another audience: both libraries refuse it, and so do we.
    for_another = signed({**claims(access), "aud": "another-service"})
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(
            for_another,
            keys.get_signing_key_from_jwt(for_another).key,
            algorithms=algorithms,
            issuer=document["issuer"],
            audience=rs256.JWT_AUDIENCE,
        )
    with pytest.raises(InvalidClaimError):
        registry.validate(jose_jwt.decode(for_another, key_set, algorithms=algorithms).claims)
    assert bearer(for_another).get(ME).status_code == 401
    assert bearer(access).get(ME).status_code == 200


# --- RFC 7009 revocation ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("which", ["refresh", "access"])
def test_revoking_either_token_ends_the_session(login, user, which):
    body = login(user)
    response = APIClient().post(
        REVOKE, f"token={body[which]}&token_type_hint={which}_token", content_type=FORM
    )

    assert response.status_code == 200, response.content
    assert response.content == b""
    session = AuthSession.objects.get(id=body["session_id"])
    assert session.revoked_at is not None
    assert bearer(body["access"]).get(ME).status_code == 401
    assert APIClient().post(REFRESH, {"refresh": body["refresh"]}, format="json").status_code == 401
    assert AuditEvent.objects.filter(
        kind=AuditEvent.Kind.LOGOUT, user=user, detail__session_id=str(session.id)
    ).exists()


@pytest.mark.django_db
def test_revocation_takes_json_too_and_a_client_id(login, user):
    body = login(user)
    response = APIClient().post(REVOKE, {"token": body["refresh"], "client_id": "web"}, format="json")

    assert response.status_code == 200
    assert AuthSession.objects.get(id=body["session_id"]).revoked_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "token",
    ["not-a-token", "a.b.c", "x" * 4096],
)
def test_an_invalid_token_is_answered_the_same_and_revokes_nothing(login, user, token):
    body = login(user)
    response = APIClient().post(REVOKE, {"token": token}, format="json")

    assert response.status_code == 200
    assert AuthSession.objects.get(id=body["session_id"]).revoked_at is None


@pytest.mark.django_db
def test_a_token_for_another_audience_revokes_nothing(login, user):
    body = login(user)
    foreign = signed({**claims(body["access"]), "aud": "another-service"})

    assert APIClient().post(REVOKE, {"token": foreign}, format="json").status_code == 200
    assert AuthSession.objects.get(id=body["session_id"]).revoked_at is None


@pytest.mark.django_db
def test_an_expired_token_revokes_nothing(login, user, settings):
    body = login(user)
    payload = claims(body["refresh"])
    payload["iat"], payload["exp"] = int(time.time()) - 120, int(time.time()) - 60

    assert APIClient().post(REVOKE, {"token": signed(payload)}, format="json").status_code == 200
    session = AuthSession.objects.get(id=body["session_id"])
    assert session.revoked_at is None
    assert session.expires_at > timezone.now() + timedelta(days=1)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "token", "This field is required."),
        ({"token": "x", "scope": "all"}, "scope", "Unknown field."),
    ],
)
def test_a_malformed_revocation_is_a_400_naming_the_field(body, field, message):
    response = APIClient().post(REVOKE, body, format="json")

    assert response.status_code == 400
    assert response.json()[field] == [message]
