"""Changes of one user's profile data raced in threads on the embedded default (a SQLite file).

Run by the tests in a child process, because the test database of pytest-django
on SQLite is a shared in-memory one, which answers "table is locked" at once to
a second writer instead of waiting as the real file does:

    python -m profiles.tests.embedded_race FOLDER chat N   # N chat sessions created at once, at the limit
    python -m profiles.tests.embedded_race FOLDER llm N    # N LLM-settings changes at once, 3 rounds

It migrates a fresh SQLite file in FOLDER, makes one user, runs the requests
over the API (one thread and one connection each) and prints what they
answered and what is left, as JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from testing.processes import django_on_a_fresh_sqlite_file


def main(folder: str, scenario: str, count: int) -> None:
    django_on_a_fresh_sqlite_file(folder)
    from django.conf import settings
    from rest_framework.test import APIClient

    from accounts.services import user_create
    from accounts.tests.support import PASSWORD, bearer
    from notifications.models import OutboxEvent
    from profiles.models import ChatSession, LLMSetting
    from testing.races import run_at_once

    user = user_create(username="racer", email="racer@example.com", password=PASSWORD)
    login = {"username": "racer", "password": PASSWORD}
    access = APIClient().post("/api/v1/auth/login", login, format="json").json()["access"]

    def client() -> APIClient:
        return bearer(access)

    result: dict[str, Any]
    if scenario == "chat":

        def create(name: str) -> int:
            return client().post("/api/v1/chat-sessions", {"external_id": name}, format="json").status_code

        for index in range(settings.MAX_USER_SESSIONS):
            assert create(f"old-{index}") == 201
        statuses = run_at_once([lambda i=i: create(f"new-{i}") for i in range(count)])
        left = list(ChatSession.objects.filter(user=user).values_list("external_id", flat=True))
        result = {"statuses": statuses, "left": left, "limit": settings.MAX_USER_SESSIONS}
    else:

        def change(temperature: float) -> int:
            body = {"agent": {"temperature": temperature}}
            return client().patch("/api/v1/profile/llm-settings", body, format="json").status_code

        statuses = []
        for round_ in range(3):
            statuses += run_at_once([lambda t=(round_ * count + i) / 100: change(t) for i in range(count)])
        result = {
            "statuses": statuses,
            "rows": LLMSetting.objects.filter(user=user).count(),
            "events": OutboxEvent.objects.filter(key="llm_settings_changed").count(),
        }
    result["statuses"] = [s if isinstance(s, int) else repr(s) for s in result["statuses"]]
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
