"""Reading the environment for `config.settings`: typed variables whose errors name the variable,
and the few settings computed from more than one variable (the secret keys)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"))


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """An integer variable; a malformed or out-of-range value names the variable."""
    raw = env.str(name, default=str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = env.str(name, default="").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env.str(name, default=default).split(",") if item.strip()]


def env_choice(name: str, default: str, choices: Sequence[str], *, upper: bool = False) -> str:
    """One of `choices` (compared in lower case, or upper with `upper`); anything else names them."""
    raw = env.str(name, default=default)
    value = raw.upper() if upper else raw.lower()
    if value not in choices:
        listed = f"{', '.join(choices[:-1])} or {choices[-1]}"
        raise ImproperlyConfigured(f"{name} must be {listed}, got {value!r}")
    return value


def read_file_setting(name: str) -> str | None:
    """The contents of the file a `*_FILE` variable names, or None when unset."""
    path = env.str(name, default="")
    if not path:
        return None
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}: cannot read {path}: {exc.strerror}") from None


def secret_key(*, production: bool, base_dir: Path) -> str:
    """`SECRET_KEY`; required in production. In development it is generated once and kept in a
    git-ignored file, so that tokens and password-reset links survive a restart."""
    key = env.str("SECRET_KEY", default="")
    if key:
        return key
    if production:
        raise ImproperlyConfigured("SECRET_KEY is required with DJANGO_ENV=production")
    key_file = base_dir / ".secret_key"
    if key_file.is_file():
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def field_encryption_keys(*, production: bool, secret_key: str) -> list[str]:
    """`FIELD_ENCRYPTION_KEYS`: Fernet keys for the secrets stored encrypted (TOTP); the first
    encrypts, every one decrypts, so a key is rotated by putting a new one first
    (`manage.py mfa_reencrypt` then re-encrypts with it, and the old one can go).

    Required in production: a key derived from `SECRET_KEY` would put both secrets in one, and a
    rotation of `SECRET_KEY` would make every stored TOTP secret unreadable.
    """
    from cryptography.fernet import Fernet

    keys = env_list("FIELD_ENCRYPTION_KEYS")
    if not keys:
        if production:
            raise ImproperlyConfigured(
                "FIELD_ENCRYPTION_KEYS is required with DJANGO_ENV=production: a comma list of Fernet keys "
                '(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")'
            )
        # Development only: a key derived from SECRET_KEY (its own label, so it is no other key).
        digest = hashlib.sha256(b"user-service field encryption\x00" + secret_key.encode()).digest()
        return [base64.urlsafe_b64encode(digest).decode()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key {position} is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    return keys
