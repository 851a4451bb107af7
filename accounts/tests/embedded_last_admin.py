"""The last-administrator race on the embedded default (a SQLite file), run by a test in a child
process, because pytest-django's SQLite test database is a shared in-memory one that answers
"table is locked" at once to a second writer instead of waiting as the file does:

    python -m accounts.tests.embedded_last_admin FOLDER [ROUNDS]

It migrates a fresh SQLite file in FOLDER, runs `last_admin_race.race` and prints the outcomes
as one JSON line.
"""

from __future__ import annotations

import json
import os
import sys


def main(folder: str, rounds: int) -> None:
    os.environ.update(
        DATABASE_URL=f"sqlite:///{folder}/db.sqlite3",
        ALLOWED_HOSTS="testserver",
        LOG_DIR=folder,
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from accounts.tests.last_admin_race import race

    call_command("migrate", verbosity=0)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    sys.stdout.write(json.dumps(race(rounds)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2)
