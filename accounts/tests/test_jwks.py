"""Tokens other services can verify: RS256 with `kid` and a JWKS, or HS256 with an empty key set."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from accounts import tokens
from accounts.tests.support import bearer


def _pem_private() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _pem_public(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
def rs256(settings):
    settings.JWT_PRIVATE_KEY = _pem_private()
    settings.JWT_PREVIOUS_PUBLIC_KEY = _pem_public(_pem_private())
    tokens.signing_material.cache_clear()
    tokens.token_backend.cache_clear()
    yield settings
    tokens.signing_material.cache_clear()
    tokens.token_backend.cache_clear()


@pytest.mark.django_db
def test_hs256_by_default_and_empty_jwks(client, login, user):
    assert client.get("/.well-known/jwks.json").json() == {"keys": []}
    header = jwt.get_unverified_header(login(user)["access"])
    assert header["alg"] == "HS256"
    assert "kid" not in header


@pytest.mark.django_db(transaction=True)
def test_pyjwkclient_verifies_an_rs256_token_from_the_running_service(rs256, live_server, login, user):
    access = login(user)["access"]
    assert jwt.get_unverified_header(access)["alg"] == "RS256"
    client = jwt.PyJWKClient(f"{live_server.url}/.well-known/jwks.json")
    signing_key = client.get_signing_key_from_jwt(access)
    claims = jwt.decode(
        access, signing_key.key, algorithms=["RS256"], audience=rs256.JWT_AUDIENCE, issuer=rs256.JWT_ISSUER
    )
    assert claims["sub"] == str(user.id)
    assert {"sid", "roles", "exp", "iat", "jti"} <= claims.keys()
    assert len(client.get_jwk_set().keys) == 2  # the previous key stays published during a rotation


@pytest.mark.django_db
def test_rs256_token_is_accepted_by_the_service(rs256, api_client, login, user):
    access = login(user)["access"]
    assert bearer(access).get("/api/v1/users/me").status_code == 200
    forged = jwt.encode(
        jwt.decode(access, options={"verify_signature": False}),
        "a guessed secret of decent length!!",
        algorithm="HS256",
    )
    assert bearer(forged).get("/api/v1/users/me").status_code == 401


def _use_keys(settings, private_pem: str, previous_public_pem: str | None) -> None:
    settings.JWT_PRIVATE_KEY = private_pem
    settings.JWT_PREVIOUS_PUBLIC_KEY = previous_public_pem
    tokens.signing_material.cache_clear()
    tokens.token_backend.cache_clear()
    tokens.forget_verified_tokens()


@pytest.fixture
def key_rotation(settings):
    yield settings
    tokens.signing_material.cache_clear()
    tokens.token_backend.cache_clear()
    tokens.forget_verified_tokens()


@pytest.mark.django_db
def test_tokens_signed_before_a_key_rotation_still_work_while_the_old_key_is_published(
    key_rotation, api_client, login, user
):
    old_private, new_private = _pem_private(), _pem_private()
    _use_keys(key_rotation, old_private, None)
    pair = login(user)

    _use_keys(key_rotation, new_private, _pem_public(old_private))  # the rotation
    assert bearer(pair["access"]).get("/api/v1/users/me").status_code == 200
    refreshed = api_client.post("/api/v1/auth/refresh", {"refresh": pair["refresh"]}, format="json")
    assert refreshed.status_code == 200, refreshed.content
    new_kid = tokens.public_jwk(tokens.signing_material()[2])["kid"]
    assert jwt.get_unverified_header(refreshed.json()["access"])["kid"] == new_kid

    _use_keys(key_rotation, new_private, None)  # the rotation is over: the old key is gone
    assert bearer(pair["access"]).get("/api/v1/users/me").status_code == 401


@pytest.mark.django_db
def test_a_token_naming_the_previous_key_but_signed_by_another_is_refused(key_rotation, login, user):
    old_private, new_private = _pem_private(), _pem_private()
    _use_keys(key_rotation, new_private, _pem_public(old_private))
    claims = jwt.decode(login(user)["access"], options={"verify_signature": False})
    old_kid = tokens.public_jwk(serialization.load_pem_public_key(_pem_public(old_private).encode()))["kid"]
    forged = jwt.encode(claims, _pem_private(), algorithm="RS256", headers={"kid": old_kid})
    hs256 = jwt.encode(
        claims, "a guessed secret of decent length!!", algorithm="HS256", headers={"kid": old_kid}
    )

    assert bearer(forged).get("/api/v1/users/me").status_code == 401
    assert bearer(hs256).get("/api/v1/users/me").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("signer", ["previous", "current"])
def test_a_token_living_longer_than_the_service_issues_is_refused_whatever_key_signed_it(
    key_rotation, login, user, settings, signer
):
    """API.md: a token whose `exp - iat` exceeds ACCESS_TOKEN_EXPIRE_MINUTES is refused (401)."""
    old_private, new_private = _pem_private(), _pem_private()
    _use_keys(key_rotation, new_private, _pem_public(old_private))
    claims = jwt.decode(login(user)["access"], options={"verify_signature": False})
    key = old_private if signer == "previous" else new_private
    kid = tokens.public_jwk(serialization.load_pem_public_key(_pem_public(key).encode()))["kid"]

    def signed(lifetime_seconds: int) -> str:
        return jwt.encode(
            {**claims, "exp": claims["iat"] + lifetime_seconds}, key, algorithm="RS256", headers={"kid": kid}
        )

    limit = settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60
    assert bearer(signed(limit)).get("/api/v1/users/me").status_code == 200
    too_long = bearer(signed(115 * 86400)).get("/api/v1/users/me")
    assert too_long.status_code == 401
    assert too_long.json()["code"]
    assert bearer(signed(limit + 1)).get("/api/v1/users/me").status_code == 401
