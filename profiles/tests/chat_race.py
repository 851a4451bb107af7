"""Creations of chat sessions raced in threads on the embedded default (a SQLite file).

Run by `test_chat_sessions.py` in a child process, because the test database of
pytest-django on SQLite is a shared in-memory one, which answers "table is
locked" at once to a second writer instead of waiting as the real file does:

    python -m profiles.tests.chat_race FOLDER CREATIONS

It migrates a fresh SQLite file in FOLDER, fills one user's sessions to the
limit, creates CREATIONS more at once over the API (one thread and one
connection each), and prints the statuses and the count left, as JSON.
"""

from __future__ import annotations

import json
import os
import sys


def main(folder: str, creations: int) -> None:
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
    from rest_framework.test import APIClient

    from accounts.services import user_create
    from accounts.tests.support import run_at_once
    from profiles.models import ChatSession

    call_command("migrate", verbosity=0)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = user_create(username="racer", email="racer@example.com", password="a-long enough pass phrase")
    tokens = (
        APIClient()
        .post(
            "/api/v1/auth/login",
            {"username": "racer", "password": "a-long enough pass phrase"},
            format="json",
        )
        .json()
    )

    def create(name: str) -> int:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        return client.post("/api/v1/chat-sessions", {"external_id": name}, format="json").status_code

    for index in range(settings.MAX_USER_SESSIONS):
        assert create(f"old-{index}") == 201
    statuses = run_at_once([lambda i=i: create(f"new-{i}") for i in range(creations)])
    left = list(ChatSession.objects.filter(user=user).values_list("external_id", flat=True))
    result = {"statuses": [str(s) for s in statuses], "left": left, "limit": settings.MAX_USER_SESSIONS}
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
