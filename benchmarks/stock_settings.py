"""The service's settings plus one benchmark-only URL: `/bench/stock/me`.

Used only by `benchmarks/hot_path.py` for the stock SimpleJWT baseline. Everything
else (middleware, database, cache, hashers, token key) is `config.settings` unchanged.
"""

from config.settings import *  # noqa: F403
from config.settings import JWT_PRIVATE_KEY, SIMPLE_JWT

ROOT_URLCONF = "benchmarks.stock_urls"

if JWT_PRIVATE_KEY:
    # RS256: the service derives the public key in accounts.tokens; SimpleJWT's own
    # backend (rest_framework_simplejwt.state) needs it spelled out to verify the same tokens.
    from cryptography.hazmat.primitives import serialization

    _private = serialization.load_pem_private_key(JWT_PRIVATE_KEY.encode(), password=None)
    SIMPLE_JWT = {
        **SIMPLE_JWT,
        "VERIFYING_KEY": _private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    }
