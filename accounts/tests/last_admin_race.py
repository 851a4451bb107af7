"""Two administrators removing each other at the same moment, over the API: what each round left.

Shared by the race tests: in the test process on PostgreSQL (`test_last_admin_races.py`), and
in a child process on a SQLite file, the embedded default (`embedded_last_admin.py`). Each
round starts with exactly two active administrators, each with its own session; both requests
are released together (a barrier, one thread and one database connection each). The rule
says one administrator must be left, whichever request wins.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from rest_framework.test import APIClient

from accounts import services
from accounts.models import User
from accounts.services import admins_active
from accounts.tests.support import PASSWORD, bearer, login_tokens
from testing.races import run_at_once

USERS = "/api/v1/users"
ME = "/api/v1/users/me"

Move = Callable[[APIClient, str], Any]


def deactivate(client: APIClient, other: str) -> Any:
    return client.patch(f"{USERS}/{other}", {"is_active": False}, format="json")


def delete(client: APIClient, other: str) -> Any:
    return client.delete(f"{USERS}/{other}")


def take_admin(client: APIClient, other: str) -> Any:
    return client.patch(f"{USERS}/{other}", {"roles": ["user"]}, format="json")


def delete_me(client: APIClient, other: str) -> Any:
    return client.delete(ME, {"password": PASSWORD}, format="json")


#: (what the first administrator does, what the second does) at the same moment.
SCENARIOS: dict[str, tuple[Move, Move]] = {
    "deactivate each other": (deactivate, deactivate),
    "delete each other": (delete, delete),
    "take admin from each other": (take_admin, take_admin),
    "each deletes itself": (delete_me, delete_me),
    "one deactivates, the other takes the role": (deactivate, take_admin),
}

_names = itertools.count()


def new_admin() -> User:
    name = f"racer{next(_names)}"
    return services.user_create(
        username=name, email=f"{name}@example.com", password=PASSWORD, roles=["user", "admin"]
    )


def _answer(response: Any) -> list[Any]:
    code = response.json().get("code") if response.content else None
    return [response.status_code, code]


def race(rounds: int = 2) -> list[dict[str, Any]]:
    """Every scenario `rounds` times; per round, both answers and how many administrators are left."""
    for user in admins_active():  # the rounds count the administrators themselves
        services.user_admin_update(user_id=user.id, is_active=False)
    survivor = new_admin()
    outcomes = []
    for name, (first, second) in SCENARIOS.items():
        for _ in range(rounds):
            one, two = survivor, new_admin()
            clients = [bearer(login_tokens(user)["access"]) for user in (one, two)]
            moves = [(first, clients[0], str(two.id)), (second, clients[1], str(one.id))]
            answers = run_at_once([lambda m=m: m[0](m[1], m[2]) for m in moves])
            left = list(admins_active().distinct())
            outcomes.append(
                {
                    "scenario": name,
                    "answers": [_answer(a) if hasattr(a, "status_code") else repr(a) for a in answers],
                    "left": len(left),
                }
            )
            survivor = left[0] if left else new_admin()
            for extra in left[1:]:  # both kept: the next round must start from two again
                services.user_admin_update(user_id=extra.id, is_active=False)
    return outcomes


def check(outcomes: list[dict[str, Any]]) -> None:
    """One administrator left after every round; one request won, the other was refused."""
    assert outcomes, "no round ran"
    for outcome in outcomes:
        assert outcome["left"] == 1, outcome
        won = [a for a in outcome["answers"] if isinstance(a, list) and a[0] in (200, 204)]
        lost = [a for a in outcome["answers"] if a not in won]
        assert len(won) == 1, outcome
        # Refused by the rule, or (the winner's change already committed) no longer let in:
        # the session ended (401) or the caller is no administrator any more (403).
        assert lost[0] in ([400, "last_admin"], [401, lost[0][1]], [403, lost[0][1]]), outcome
    assert any([400, "last_admin"] in outcome["answers"] for outcome in outcomes), outcomes
