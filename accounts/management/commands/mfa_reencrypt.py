"""`manage.py mfa_reencrypt`: after a rotation of `FIELD_ENCRYPTION_KEYS` (a new key put first),
re-encrypt every stored TOTP secret with that key, so that the old key can be dropped.

Each row is rewritten only if it still holds the token it was read with (a conditional UPDATE), so
an enrollment or a reset happening meanwhile is not overwritten. A secret that no key opens stops
the command before anything is written: dropping a key too early is an error to see, not to skip.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts import field_encryption
from accounts.models import TOTPDevice


class Command(BaseCommand):
    help = "Re-encrypt every stored TOTP secret with the first key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        rows = list(TOTPDevice.objects.values_list("pk", "secret"))
        rotated = []
        for pk, token in rows:
            try:
                rotated.append((pk, token, field_encryption.rotate(token)))
            except field_encryption.UndecryptableSecret:
                raise CommandError(
                    f"The TOTP secret of user {pk} opens with no key of FIELD_ENCRYPTION_KEYS: "
                    "put the key it was encrypted with back (after the new one) and run this again. "
                    "Nothing was changed."
                ) from None
        changed = sum(
            TOTPDevice.objects.filter(pk=pk, secret=old).update(secret=new)
            for pk, old, new in rotated
            if new != old
        )
        self.stdout.write(self.style.SUCCESS(f"{changed} of {len(rows)} TOTP secret(s) re-encrypted."))
