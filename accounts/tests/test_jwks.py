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
    claims = jwt.decode(access, signing_key.key, algorithms=["RS256"])
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
