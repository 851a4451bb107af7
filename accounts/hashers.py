"""Password hashers of our own: only what Django's do not do for the hashes we inherit."""

from __future__ import annotations

from typing import Any

import bcrypt
from django.contrib.auth.hashers import BCryptPasswordHasher as DjangoBCryptPasswordHasher


class BCryptPasswordHasher(DjangoBCryptPasswordHasher):
    """Plain bcrypt (`bcrypt$$2b$...`), as the earlier services stored it through passlib.

    bcrypt reads at most 72 bytes of a password. passlib and bcrypt < 5 cut
    longer ones silently; bcrypt 5 raises instead, which turned a login with a
    long password against a migrated hash into a 500. Cutting here verifies
    exactly what the old services hashed. New hashes are BCryptSHA256 (first in
    PASSWORD_HASHERS), which has no such limit, and a login upgrades to it.
    """

    def encode(self, password: str, salt: Any) -> str:
        data = bcrypt.hashpw(password.encode()[:72], salt)
        return f"{self.algorithm}${data.decode('ascii')}"
