"""Access and refresh tokens, made with SimpleJWT's token classes.

Access tokens carry `sub`, `sid`, `roles`, `exp`, `iat`, `jti`, and the claims an
OIDC resource server checks: `iss` (`JWT_ISSUER`), `aud` (`JWT_AUDIENCE`),
`auth_time` and `amr`. With a private key configured they are RS256 with a
`kid` header that names the JWKS entry (`/.well-known/jwks.json`); otherwise
HS256 with `SECRET_KEY`.

Written here rather than configured because SimpleJWT's backend puts no `kid`
in the header and publishes no JWKS.

`access_claims` is how requests read an access token: each exact token string
is verified (signature and claims, by SimpleJWT) once per process and then
kept in a bounded map until its `exp`, which is still checked on every use.
Only what the token says is kept; whether its session is live and its user
active is read through the cache on every request (`accounts.cache`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken, Token
from rest_framework_simplejwt.utils import datetime_to_epoch


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(public_key: RSAPublicKey) -> dict[str, str]:
    """The JWK of an RSA public key, its `kid` the RFC 7638 thumbprint."""
    numbers = public_key.public_numbers()
    members = {"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}
    thumbprint = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    kid = base64.urlsafe_b64encode(thumbprint.digest()).rstrip(b"=").decode()
    return {**members, "kid": kid, "use": "sig", "alg": "RS256"}


def _load_public_key(pem: str) -> RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, RSAPublicKey):
        raise ValueError("JWT_PREVIOUS_PUBLIC_KEY_FILE is not an RSA public key")
    return key


@cache
def signing_material() -> tuple[str, Any, Any, str | None]:
    """(algorithm, signing key, verifying key, kid) from the settings."""
    if not settings.JWT_PRIVATE_KEY:
        return "HS256", settings.SECRET_KEY, settings.SECRET_KEY, None
    private_key = serialization.load_pem_private_key(settings.JWT_PRIVATE_KEY.encode(), password=None)
    if not isinstance(private_key, RSAPrivateKey):
        raise ValueError("JWT_PRIVATE_KEY_FILE is not an RSA private key")
    public_key = private_key.public_key()
    return "RS256", private_key, public_key, public_jwk(public_key)["kid"]


def jwks() -> dict[str, list[dict[str, str]]]:
    """The published key set: the current key and, during a rotation, the previous one."""
    algorithm, _, public_key, _ = signing_material()
    if algorithm != "RS256":
        return {"keys": []}
    keys = [public_jwk(public_key)]
    if settings.JWT_PREVIOUS_PUBLIC_KEY:
        keys.append(public_jwk(_load_public_key(settings.JWT_PREVIOUS_PUBLIC_KEY)))
    return {"keys": keys}


class ServiceTokenBackend(TokenBackend):
    """SimpleJWT's backend with the `kid` header, already-loaded key objects, and the previous key.

    During a key rotation (`JWT_PREVIOUS_PUBLIC_KEY_FILE`) the tokens signed
    before it still verify here, as they do for the services that read the
    JWKS: a token whose `kid` names the previous key is checked against that
    key (RS256 only), every other token against the current one. Without it a
    rotation would log every user out, their refresh tokens being signed with
    the old key. SimpleJWT verifies with one key only.
    """

    def __init__(self) -> None:
        algorithm, signing_key, verifying_key, kid = signing_material()
        super().__init__(algorithm)
        self._signing_key = signing_key
        self._verifying_key = verifying_key
        self.kid = kid
        self._previous_keys: dict[str, RSAPublicKey] = {}
        if algorithm == "RS256" and settings.JWT_PREVIOUS_PUBLIC_KEY:
            previous = _load_public_key(settings.JWT_PREVIOUS_PUBLIC_KEY)
            self._previous_keys[public_jwk(previous)["kid"]] = previous

    def _key_for(self, token: Any) -> Any:
        if not self._previous_keys:
            return self._verifying_key
        kid = jwt.get_unverified_header(token).get("kid")
        return (
            self._previous_keys.get(kid, self._verifying_key) if isinstance(kid, str) else self._verifying_key
        )

    def encode(self, payload: dict[str, Any]) -> str:
        headers = {"kid": self.kid} if self.kid else None
        return jwt.encode(payload, self._signing_key, algorithm=self.algorithm, headers=headers)

    def decode(self, token: Any, verify: bool = True) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                self._key_for(token),
                algorithms=[self.algorithm],
                # `aud` is checked by the token classes (`_IssuedHere`): which audience is right
                # depends on the token's type, and a token from before the claim has none.
                options={"verify_signature": verify, "verify_aud": False, "require": ["exp", "iat", "jti"]},
            )
        except jwt.InvalidTokenError as exc:
            from rest_framework_simplejwt.exceptions import TokenBackendError

            raise TokenBackendError("Token is invalid") from exc


@cache
def token_backend() -> ServiceTokenBackend:
    return ServiceTokenBackend()


class _BackendMixin:
    @property
    def token_backend(self) -> TokenBackend:
        return token_backend()


class _BoundedLifetime:
    """A token whose `exp - iat` is longer than this service issues is refused, whatever key signed
    it: a key that leaked, or a previous key kept during a rotation, must not mint tokens that
    live for months (one with `exp` 115 days ahead was accepted before)."""

    payload: dict[str, Any]

    def max_lifetime_seconds(self) -> int:
        raise NotImplementedError

    def verify(self) -> None:
        super().verify()  # type: ignore[misc]
        lifetime = int(self.payload.get("exp", 0)) - int(self.payload.get("iat", 0))
        if lifetime > self.max_lifetime_seconds():
            raise TokenError("Token lifetime exceeds what this service issues")


#: RFC 8176 authentication method references (`amr`). A password login is `pwd`; a social
#: login is the provider's name (`yandex`, `telegram`), which RFC 8176 leaves to each issuer.
#: Multi-factor authentication adds `otp` and `mfa` to the password's: `amr` is a list, and
#: whatever opens a session names every method it checked (`session_open(amr=...)`).
AMR_PASSWORD = "pwd"  # noqa: S105 (an RFC 8176 method name, not a secret)
AMR_OTP = "otp"
AMR_MFA = "mfa"


def _audiences(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class _IssuedHere:
    """A token whose `iss` is not `JWT_ISSUER`, or whose `aud` does not name this token's audience,
    is refused: it was made for another service, or by another issuer sharing a key.

    A token with neither claim was issued before they existed; it is accepted until it expires
    (access tokens within `ACCESS_TOKEN_EXPIRE_MINUTES`, refresh tokens within
    `REFRESH_TOKEN_EXPIRE_DAYS`, and a refresh hands out tokens that have both), so a deploy logs
    nobody out. Only the holder of the signing key can make such a token, and that holder could
    make one with the right claims just as well: accepting the old shape gives nobody more. The
    branch can go once `REFRESH_TOKEN_EXPIRE_DAYS` have passed since the release that added them.
    A token with one claim and not the other is no token of this service's, old or new: refused.
    """

    payload: dict[str, Any]

    def expected_audience(self) -> str:
        raise NotImplementedError

    def verify(self) -> None:
        super().verify()  # type: ignore[misc]
        if "iss" not in self.payload and "aud" not in self.payload:
            return
        if self.payload.get("iss") != settings.JWT_ISSUER:
            raise TokenError("Token was issued by another issuer")
        if self.expected_audience() not in _audiences(self.payload.get("aud")):
            raise TokenError("Token was issued for another audience")


class SessionAccessToken(_BackendMixin, _IssuedHere, _BoundedLifetime, AccessToken):
    """An access token bound to a session (`sid`), for the services of the platform (`aud`)."""

    def max_lifetime_seconds(self) -> int:
        return int(settings.ACCESS_TOKEN_EXPIRE_MINUTES) * 60

    def expected_audience(self) -> str:
        return str(settings.JWT_AUDIENCE)


class SessionRefreshToken(_BackendMixin, _IssuedHere, _BoundedLifetime, Token):
    """A refresh token: single use, bound to a session, never stored raw.

    Its audience is the issuer itself, as Keycloak's refresh tokens are: only this service takes
    it, and a resource server that checks `aud` (the platform's) refuses it as an access token,
    though the JWKS verifies its signature.
    """

    token_type = "refresh"  # noqa: S105  (a claim value, not a secret)
    lifetime = timedelta(days=settings.REFRESH_TOKEN_EXPIRE_DAYS)

    def max_lifetime_seconds(self) -> int:
        return int(settings.REFRESH_TOKEN_EXPIRE_DAYS) * 86400

    def expected_audience(self) -> str:
        return str(settings.JWT_ISSUER)


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says about its bearer.

    `amr`: how the session was opened (empty for a token issued before the claim existed).
    """

    user_id: str
    session_id: str
    exp: int
    amr: tuple[str, ...] = ()


#: At most this many verified tokens per process (~0.5 KB each): a flood of
#: fresh tokens evicts the oldest entries, it cannot grow the map.
VERIFIED_TOKENS_MAX = 10_000

_verified: dict[str, AccessClaims] = {}
_verified_by: list[Any] = [None]  # the token backend (keys) the map's entries were verified with
_verified_lock = threading.Lock()


def access_claims(raw: str) -> AccessClaims:
    """The claims of a valid access token bound to a session; `TokenError` otherwise.

    Why a map: the profile of a warm `/users/me` put PyJWT's decode (base64url
    checked a character at a time, the HMAC, the claim checks) first; the
    benchmark measured what keeping it saves (benchmarks/README.md). The key is
    the exact token string, so no other token can hit an entry; `exp` is
    checked on each use, and the map empties itself when the signing keys change.
    """
    backend = token_backend()
    if _verified_by[0] is not backend:
        with _verified_lock:
            _verified.clear()
            _verified_by[0] = backend
    claims = _verified.get(raw)
    if claims is not None:
        # SimpleJWT's own rule (no leeway): a token is expired from its `exp` second on.
        if time.time() < claims.exp:
            return claims
        with _verified_lock:  # under gthread workers another thread may be evicting the oldest entry
            _verified.pop(raw, None)
        raise TokenError("Token is invalid or expired")
    token = SessionAccessToken(raw)  # type: ignore[arg-type]  # signature, exp, token type, jti
    if "sid" not in token or "sub" not in token:
        raise TokenError("Token has no session")
    amr = token.get("amr")
    claims = AccessClaims(
        str(token["sub"]),
        str(token["sid"]),
        int(token["exp"]),
        tuple(str(method) for method in amr) if isinstance(amr, list) else (),
    )
    with _verified_lock:
        if len(_verified) >= VERIFIED_TOKENS_MAX:
            del _verified[next(iter(_verified))]  # the oldest entry (dicts keep insertion order)
        _verified[raw] = claims
    return claims


def verified_token_count() -> int:
    return len(_verified)


def forget_verified_tokens() -> None:
    with _verified_lock:
        _verified.clear()


@receiver(setting_changed)
def _keys_changed(*, setting: str, **kwargs: Any) -> None:
    """Tests swap keys with `override_settings`; production changes them by restarting."""
    if setting in {
        "SECRET_KEY",
        "JWT_PRIVATE_KEY",
        "JWT_PREVIOUS_PUBLIC_KEY",
        "SIMPLE_JWT",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
    }:
        signing_material.cache_clear()
        token_backend.cache_clear()
        forget_verified_tokens()


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def make_token_pair(
    *,
    user_id: str,
    session_id: str,
    roles: list[str],
    session_expires_at: datetime,
    auth_time: datetime | None = None,
    amr: Sequence[str] | None = None,
) -> tuple[str, str, int]:
    """(access, refresh, access lifetime in seconds); neither outlives the session.

    `auth_time` (OIDC): when the session was opened, which a refresh does not change; services
    that want a recent login compare it to now. `amr` (RFC 8176): how it was opened; the refresh
    token carries it too, so that every pair of the session says the same (None: unknown, for a
    session whose refresh token predates the claim, and then neither token has it).
    """
    access = SessionAccessToken()
    access["iss"] = settings.JWT_ISSUER
    access["aud"] = settings.JWT_AUDIENCE
    access["sub"] = user_id
    access["sid"] = session_id
    access["roles"] = roles
    if auth_time is not None:
        access["auth_time"] = datetime_to_epoch(auth_time)
    refresh = SessionRefreshToken()
    refresh["iss"] = settings.JWT_ISSUER
    refresh["aud"] = settings.JWT_ISSUER
    refresh["sub"] = user_id
    refresh["sid"] = session_id
    if amr is not None:
        access["amr"], refresh["amr"] = list(amr), list(amr)
    session_end = datetime_to_epoch(session_expires_at)
    for token in (access, refresh):
        if token["exp"] > session_end:
            token["exp"] = session_end
    expires_in = max(0, access["exp"] - access["iat"])
    return str(access), str(refresh), expires_in
