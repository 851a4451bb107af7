"""Secrets stored encrypted in the database: Fernet tokens under `FIELD_ENCRYPTION_KEYS`.

`cryptography`'s `MultiFernet` does the work (AES-128-CBC and HMAC-SHA256, a timestamp, a version
byte): the first key encrypts, every key decrypts, so a key is rotated by putting a new one first,
running `manage.py mfa_reencrypt` (which re-encrypts every stored secret with it, `rotate`), and
then dropping the old one. A dump of the table shows tokens, never a secret.

Not a model field type: the one column that holds such a secret (`TOTPDevice.secret`) is written
and read in `accounts.services.mfa_codes` only, so the plain text exists in one place, for the
moment it is used, and nothing (a form, a serializer, `values()`) can read it by accident.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class UndecryptableSecret(Exception):
    """No key of `FIELD_ENCRYPTION_KEYS` opens this token (a key was dropped before re-encrypting)."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    # Keyed by the keys themselves, so `override_settings` in tests and a changed setting are seen
    # without a signal; building a MultiFernet costs a few microseconds, keeping it costs nothing.
    return MultiFernet([Fernet(key) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plain: str) -> str:
    """A Fernet token of `plain` under the first key."""
    return _current().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    """The plain text of a token made by `encrypt` under any of the keys."""
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableSecret("no key of FIELD_ENCRYPTION_KEYS decrypts this secret") from None


def rotate(token: str) -> str:
    """The same secret, encrypted under the first key (unchanged text if it already is)."""
    try:
        return _current().rotate(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableSecret("no key of FIELD_ENCRYPTION_KEYS decrypts this secret") from None
