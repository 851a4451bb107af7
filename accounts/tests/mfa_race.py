"""Second factors presented at the same moment, over the API: what each round left.

Shared by the race tests: in the test process on PostgreSQL (`test_mfa_races.py`), and in a child
process on a SQLite file, the embedded default (`embedded_mfa_race.py`). Each round has a user of
its own (its own TOTP secret) and releases two verify requests together (a barrier, one thread and
one database connection each). The rule: one code, one token, one recovery code work once, so each
round opens exactly one session.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pyotp
from rest_framework.test import APIClient

from accounts.models import AuthSession
from accounts.services.mfa_challenges import PURPOSE_LOGIN, mfa_challenge_open
from accounts.services.mfa_codes import recovery_codes_issue
from accounts.tests.factories import UserFactory
from accounts.tests.mfa_support import mfa_on
from testing.races import run_at_once

VERIFY = "/api/v1/auth/mfa/verify"
_names = itertools.count()


def _token(user: Any) -> str:
    return mfa_challenge_open(user=user, amr=["pwd"], purpose=PURPOSE_LOGIN)[1]


def _verify(body: dict[str, str]) -> Callable[[], int]:
    return lambda: APIClient().post(VERIFY, body, format="json").status_code


def one_code_two_tokens(user: Any, secret: str) -> list[dict[str, str]]:
    """Two logins waiting, both handed the same code (a phished code replayed at once)."""
    code = pyotp.TOTP(secret).now()
    return [{"mfa_token": _token(user), "code": code}, {"mfa_token": _token(user), "code": code}]


def one_token_twice(user: Any, secret: str) -> list[dict[str, str]]:
    """One login's token sent twice with its code (a client retrying)."""
    body = {"mfa_token": _token(user), "code": pyotp.TOTP(secret).now()}
    return [body, dict(body)]


def one_token_two_codes(user: Any, secret: str) -> list[dict[str, str]]:
    """One token with two different right codes (this step's and the next): the token works once."""
    totp, token = pyotp.TOTP(secret), _token(user)
    now = totp.timecode(time.time())
    return [
        {"mfa_token": token, "code": totp.generate_otp(now)},
        {"mfa_token": token, "code": totp.generate_otp(now + 1)},
    ]


def one_recovery_code_two_tokens(user: Any, secret: str) -> list[dict[str, str]]:
    code = recovery_codes_issue(user_id=user.id)[0]
    return [
        {"mfa_token": _token(user), "recovery_code": code},
        {"mfa_token": _token(user), "recovery_code": code},
    ]


SCENARIOS: dict[str, Callable[[Any, str], list[dict[str, str]]]] = {
    "one code, two tokens": one_code_two_tokens,
    "one token twice": one_token_twice,
    "one token, two right codes": one_token_two_codes,
    "one recovery code, two tokens": one_recovery_code_two_tokens,
}


def race(rounds: int) -> list[dict[str, Any]]:
    """Every scenario `rounds` times: the two statuses and how many sessions the user has after."""
    outcomes = []
    for name, bodies_of in SCENARIOS.items():
        for _ in range(rounds):
            user = UserFactory(username=f"mfa-racer{next(_names)}")
            secret = mfa_on(user)
            bodies = bodies_of(user, secret)
            statuses = run_at_once([_verify(body) for body in bodies])
            outcomes.append(
                {
                    "scenario": name,
                    "statuses": sorted(s if isinstance(s, int) else repr(s) for s in statuses),
                    "sessions": AuthSession.objects.filter(user=user).count(),
                }
            )
    return outcomes


def check(outcomes: list[dict[str, Any]]) -> None:
    """Each round: one 200, one 401, one session."""
    assert outcomes
    for outcome in outcomes:
        assert outcome["statuses"] == [200, 401], outcome
        assert outcome["sessions"] == 1, outcome
