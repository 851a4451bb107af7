"""The MFA races on the embedded default (a SQLite file, several threads), run by a test in a child
process, because pytest-django's SQLite test database is a shared in-memory one that answers
"table is locked" at once to a second writer instead of waiting as the file does:

    python -m accounts.tests.embedded_mfa_race FOLDER [ROUNDS]

It migrates a fresh SQLite file in FOLDER, runs `mfa_race.race` and prints the outcomes as one
JSON line.
"""

from __future__ import annotations

import json
import sys

from testing.processes import django_on_a_fresh_sqlite_file


def main(folder: str, rounds: int) -> None:
    django_on_a_fresh_sqlite_file(folder)
    from accounts.tests.mfa_race import race

    sys.stdout.write(json.dumps(race(rounds)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
