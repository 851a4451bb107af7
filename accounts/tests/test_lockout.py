"""Brute-force lockout of password login, per account (API.md, "Accounts and tokens" → Rules).

`LOGIN_MAX_ATTEMPTS` failures lock password login for `LOGIN_LOCKOUT_SECONDS`
(429 with `Retry-After`), even with the right password; a success resets the
count; failures during a lockout do not extend it. Time is moved by editing
`LoginLockout.locked_until`, the one clock the rule reads.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEvent, AuthSession, LoginLockout
from accounts.tests.factories import UserFactory
from accounts.tests.support import CACHE_DOWN

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"
MAX_ATTEMPTS = 3
LOCKOUT_SECONDS = 300

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


@pytest.fixture(autouse=True)
def _small_limits(settings):
    settings.LOGIN_MAX_ATTEMPTS = MAX_ATTEMPTS
    settings.LOGIN_LOCKOUT_SECONDS = LOCKOUT_SECONDS


def attempt(identifier: str, password: str, **extra):
    return APIClient().post(LOGIN, {"username": identifier, "password": password}, format="json", **extra)


def fail(identifier: str, times: int = 1) -> None:
    for _ in range(times):
        response = attempt(identifier, "definitely not the password")
        assert response.status_code == 401, response.content


def assert_locked(response) -> int:
    """The whole locked answer: 429, `Retry-After` in whole seconds, `{detail, code}`. Returns the wait."""
    assert response.status_code == 429, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "locked_out"
    assert isinstance(body["detail"], str)
    assert body["detail"]
    retry_after = response["Retry-After"]
    assert retry_after.isdigit(), retry_after
    wait = int(retry_after)
    assert 1 <= wait <= LOCKOUT_SECONDS
    return wait


def lockout_row(user) -> LoginLockout:
    return LoginLockout.objects.get(key=f"user:{user.id}")


# --- the count and the lock --------------------------------------------------------


def test_failures_below_the_limit_are_the_standard_401(user, password):
    standard = attempt("nobody-at-all", password)
    assert standard.status_code == 401

    for _ in range(MAX_ATTEMPTS - 1):
        response = attempt(user.username, "wrong password")
        assert response.status_code == 401
        assert response.json() == standard.json()
        assert "Retry-After" not in response

    assert attempt(user.username, password).status_code == 200


def test_the_limit_locks_even_the_right_password(user, password):
    fail(user.username, MAX_ATTEMPTS)

    response = attempt(user.username, password)

    assert_locked(response)
    assert not AuthSession.objects.filter(user=user).exists()
    row = lockout_row(user)
    assert row.failures == MAX_ATTEMPTS
    assert row.locked_until > timezone.now() + timedelta(seconds=LOCKOUT_SECONDS - 30)
    # Wrong passwords get the same locked answer, not the 401 that would confirm a guess was checked.
    assert_locked(attempt(user.username, "another wrong guess"))


def test_retry_after_is_the_time_left(user, password):
    fail(user.username, MAX_ATTEMPTS)
    LoginLockout.objects.filter(key=f"user:{user.id}").update(
        locked_until=timezone.now() + timedelta(seconds=120)
    )

    wait = assert_locked(attempt(user.username, password))

    assert 110 <= wait <= 120


def test_a_success_resets_the_count(user, password):
    fail(user.username, MAX_ATTEMPTS - 1)
    assert attempt(user.username, password).status_code == 200

    fail(user.username, MAX_ATTEMPTS - 1)

    assert attempt(user.username, password).status_code == 200


def test_failures_during_a_lockout_do_not_extend_it(user, password):
    fail(user.username, MAX_ATTEMPTS)
    # 200 of the 300 seconds have passed.
    later = timezone.now() + timedelta(seconds=100)
    LoginLockout.objects.filter(key=f"user:{user.id}").update(locked_until=later)

    for _ in range(5):
        assert_locked(attempt(user.username, "still guessing"))

    row = lockout_row(user)
    assert row.locked_until == later
    assert row.failures == MAX_ATTEMPTS
    assert assert_locked(attempt(user.username, password)) <= 100


def test_after_the_lockout_the_right_password_works_and_the_count_starts_afresh(user, password):
    fail(user.username, MAX_ATTEMPTS)
    assert_locked(attempt(user.username, password))
    LoginLockout.objects.filter(key=f"user:{user.id}").update(
        locked_until=timezone.now() - timedelta(seconds=1)
    )

    response = attempt(user.username, password)

    assert response.status_code == 200
    assert response.json()["access"]
    assert not LoginLockout.objects.filter(key=f"user:{user.id}", locked_until__isnull=False).exists()
    # A fresh count: one failure is an ordinary 401 again.
    assert attempt(user.username, "wrong").status_code == 401
    assert attempt(user.username, password).status_code == 200


def test_an_expired_lockout_counts_a_new_failure_from_one(user, password):
    fail(user.username, MAX_ATTEMPTS)
    LoginLockout.objects.filter(key=f"user:{user.id}").update(
        locked_until=timezone.now() - timedelta(seconds=1)
    )

    fail(user.username, MAX_ATTEMPTS - 1)

    row = lockout_row(user)
    assert row.failures == MAX_ATTEMPTS - 1
    assert row.locked_until is None
    assert attempt(user.username, password).status_code == 200


# --- per account, whatever the name -------------------------------------------------


def test_the_lockout_is_per_account_whichever_login_name_is_used(user, password):
    fail(user.username)
    fail(user.username.upper())
    fail(user.email.upper())

    for identifier in (user.username, user.username.upper(), user.email, f"  {user.email}  "):
        assert_locked(attempt(identifier, password))
    assert LoginLockout.objects.count() == 1
    assert lockout_row(user).failures == MAX_ATTEMPTS


def test_the_lockout_of_one_account_leaves_others_alone(user, password):
    other = UserFactory(password=password)
    fail(user.username, MAX_ATTEMPTS)

    assert attempt(other.username, password).status_code == 200
    assert_locked(attempt(user.username, password))


def test_an_unknown_name_locks_like_an_account(user, password):
    """No enumeration: a made-up name gets exactly what a real, locked account gets."""
    fail(user.username, MAX_ATTEMPTS)
    fail("ghost-user", MAX_ATTEMPTS)

    real = attempt(user.username, password)
    ghost = attempt("ghost-user", password)
    ghost_other_case = attempt("GHOST-USER", password)

    assert_locked(real)
    assert_locked(ghost)
    assert_locked(ghost_other_case)
    assert ghost.json() == real.json()
    assert set(ghost.headers) == set(real.headers)


def test_an_unknown_email_locks_too():
    fail("ghost@example.com", MAX_ATTEMPTS)

    assert_locked(attempt("ghost@example.com", "whatever"))
    assert_locked(attempt("GHOST@example.com", "whatever"))


# --- lifting a lockout ------------------------------------------------------------------


def test_the_unlock_user_command_lifts_the_lockout(user, password, capsys):
    fail(user.username, MAX_ATTEMPTS)
    assert_locked(attempt(user.username, password))

    call_command("unlock_user", user.username)

    assert "Unlocked" in capsys.readouterr().out
    assert not LoginLockout.objects.filter(key=f"user:{user.id}").exists()
    assert attempt(user.username, password).status_code == 200
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.UNLOCK, user=user).count() == 1


def test_the_unlock_user_command_accepts_the_email_and_reports_an_unlocked_user(user, password, capsys):
    call_command("unlock_user", user.email)
    assert "was not locked" in capsys.readouterr().out

    fail(user.username, MAX_ATTEMPTS)
    call_command("unlock_user", user.email.upper())

    assert attempt(user.username, password).status_code == 200


def test_the_admin_action_unlock_users_lifts_the_lockout(client, user, password):
    admin = UserFactory(password=password, roles=["user", "admin"], is_superuser=True, is_staff=True)
    bystander = UserFactory(password=password)
    fail(user.username, MAX_ATTEMPTS)
    fail(bystander.username, MAX_ATTEMPTS)
    client.force_login(admin)

    response = client.post(
        "/admin/accounts/user/", {"action": "unlock_users", "_selected_action": [str(user.id)]}
    )

    assert response.status_code == 302, response.content.decode()[:500]
    assert attempt(user.username, password).status_code == 200
    assert_locked(attempt(bystander.username, password))  # only the selected user
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.UNLOCK)
    assert (event.user_id, event.actor_id) == (user.id, admin.id)


def test_the_admin_lists_locked_users(client, user, password):
    admin = UserFactory(password=password, roles=["user", "admin"], is_superuser=True, is_staff=True)
    free = UserFactory(password=password, username="free-one")
    fail(user.username, MAX_ATTEMPTS)
    client.force_login(admin)

    page = client.get("/admin/accounts/user/?locked=yes").content.decode()

    assert f">{user.username}<" in page
    assert f">{free.username}<" not in page


# --- the lockout does not depend on the cache ------------------------------------------


def test_a_locked_account_stays_refused_when_the_cache_is_down(user, password):
    fail(user.username, MAX_ATTEMPTS)

    with override_settings(CACHES=CACHE_DOWN):
        response = attempt(user.username, password)

    assert_locked(response)
    assert not AuthSession.objects.filter(user=user).exists()


def test_failures_count_and_lock_while_the_cache_is_down(user, password):
    with override_settings(CACHES=CACHE_DOWN):
        fail(user.username, MAX_ATTEMPTS)
        locked = attempt(user.username, password)

    assert_locked(locked)
    assert_locked(attempt(user.username, password))  # and after the cache is back


# --- the audit trail of a lockout ---------------------------------------------------------


def test_a_lockout_is_audited_once(user, password):
    fail(user.username, MAX_ATTEMPTS)
    assert_locked(attempt(user.username, password))
    assert_locked(attempt(user.username, "more"))

    lockouts = AuditEvent.objects.filter(kind=AuditEvent.Kind.LOCKOUT, user=user)
    assert lockouts.count() == 1
    assert "more" not in json.dumps(lockouts.get().detail)
