"""Multi-factor authentication over the API (API.md, "Multi-factor authentication"), the whole flow
with `pyotp` computing the codes as an authenticator app would: enrollment, login, verify, replay,
drift, recovery codes, regeneration, disable, the lockout through wrong codes, the token's expiry.

The clock the service reads the time steps from (`accounts.totp.clock`) is held still where a test
depends on which step "now" is, so that no test fails for a step changing under it.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
from datetime import timedelta
from typing import Any

import jwt
import pyotp
import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEvent, AuthSession, LoginLockout, MFAChallenge, RecoveryCode, TOTPDevice
from accounts.tests.factories import UserFactory
from accounts.tests.mfa_support import NOW, mfa_on
from accounts.tests.support import CACHE_DOWN, PASSWORD, bearer, bearer_for
from notifications.models import Notification, OutboxEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]

LOGIN = "/api/v1/auth/login"
VERIFY = "/api/v1/auth/mfa/verify"
STATUS = "/api/v1/auth/mfa"
TOTP = "/api/v1/auth/mfa/totp"
CONFIRM = "/api/v1/auth/mfa/totp/confirm"
CODES = "/api/v1/auth/mfa/recovery-codes"
ME = "/api/v1/users/me"


def code(secret: str, steps: int = 0, at: float = NOW) -> str:
    return pyotp.TOTP(secret).at(at, counter_offset=steps)


def login(user: Any, password: str = PASSWORD, client: APIClient | None = None) -> Any:
    return (client or APIClient()).post(
        LOGIN, {"username": user.username, "password": password}, format="json"
    )


def mfa_token(user: Any) -> str:
    response = login(user)
    assert response.status_code == 403, response.content
    return str(response.json()["mfa_token"])


def verify(token: str, **body: str) -> Any:
    return APIClient().post(VERIFY, {"mfa_token": token, **body}, format="json")


def amr(access: str) -> list[str]:
    return list(jwt.decode(access, options={"verify_signature": False})["amr"])


def enrolled(user: Any, clock: Any) -> tuple[APIClient, str, list[str]]:
    """Enroll over the API; (the user's client, the secret, the recovery codes)."""
    client = bearer_for(user)
    secret = client.post(TOTP, {"current_password": PASSWORD}, format="json").json()["secret"]
    confirmed = client.post(CONFIRM, {"code": code(secret)}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    return client, secret, confirmed.json()["recovery_codes"]


def failures(user: Any) -> int:
    row = LoginLockout.objects.filter(key=f"user:{user.id}").first()
    return row.failures if row else 0


# --- enrollment ------------------------------------------------------------------------------------


def test_enrollment_gives_a_secret_then_the_first_code_turns_totp_on_with_ten_recovery_codes(user, clock):
    client = bearer_for(user)
    assert client.get(STATUS).json() == {"totp": False, "recovery_codes_left": 0, "required": False}

    started = client.post(TOTP, {"current_password": PASSWORD}, format="json")
    assert started.status_code == 200, started.content
    assert started["Cache-Control"] == "no-store"
    secret, uri = started.json()["secret"], started.json()["otpauth_uri"]
    assert len(base64.b32decode(secret)) == 20  # 160 bits
    parsed = urllib.parse.urlsplit(uri)
    query = urllib.parse.parse_qs(parsed.query)
    assert (parsed.scheme, parsed.netloc) == ("otpauth", "totp")
    assert query["secret"] == [secret]
    assert urllib.parse.unquote(parsed.path).endswith(user.email)
    assert pyotp.parse_uri(uri).now() == pyotp.TOTP(secret).now()  # what an app reads from it: SHA-1, 6, 30 s
    # Pending: not on until a code confirms it.
    assert client.get(ME).json()["mfa"] is False
    assert login(user).status_code == 200

    wrong = client.post(CONFIRM, {"code": code(secret, steps=5)}, format="json")
    assert wrong.status_code == 400
    assert list(wrong.json()) == ["code"]
    assert failures(user) == 1  # a wrong code counts, as a wrong password does

    confirmed = client.post(CONFIRM, {"code": code(secret)}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    assert client.get(STATUS).json() == {"totp": True, "recovery_codes_left": 10, "required": False}
    assert client.get(ME).json()["mfa"] is True  # the cached user was refreshed
    assert AuditEvent.objects.filter(user=user, kind="mfa_enabled").count() == 1
    event = OutboxEvent.objects.get(key="mfa_enabled")
    assert {k: event.payload[k] for k in ("user_id", "method")} == {"user_id": str(user.id), "method": "totp"}
    note = Notification.objects.get(user=user, kind="security", data__event="mfa_enabled")
    assert note.title == "Two-factor authentication is on"
    assert [m.subject for m in mail.outbox] == ["Two-factor authentication is on"]

    assert client.post(CONFIRM, {"code": code(secret, 1)}, format="json").json()["code"] == "mfa_not_pending"
    again = client.post(TOTP, {"current_password": PASSWORD}, format="json")
    assert (again.status_code, again.json()["code"]) == (400, "mfa_already_enabled")


def test_enrollment_needs_re_authentication(user, clock):
    client = bearer_for(user)
    missing = client.post(TOTP, {}, format="json")
    assert (missing.status_code, missing.json()["code"]) == (403, "reauth_required")
    wrong = client.post(TOTP, {"current_password": "not it"}, format="json")
    assert wrong.status_code == 400
    assert "current_password" in wrong.json()
    assert failures(user) == 1
    assert not TOTPDevice.objects.filter(user=user).exists()


def test_a_new_start_replaces_a_pending_secret(user, clock):
    client = bearer_for(user)
    first = client.post(TOTP, {"current_password": PASSWORD}, format="json").json()["secret"]
    second = client.post(TOTP, {"current_password": PASSWORD}, format="json").json()["secret"]
    assert first != second
    assert client.post(CONFIRM, {"code": code(first)}, format="json").status_code == 400
    assert client.post(CONFIRM, {"code": code(second)}, format="json").status_code == 200


# --- login with the second factor -------------------------------------------------------------------


def test_a_right_password_answers_mfa_required_with_a_token_and_opens_no_session(user, clock):
    mfa_on(user)
    response = login(user)
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "mfa_required"
    assert body["detail"]
    assert body["methods"] == ["totp", "recovery_code"]
    assert len(body["mfa_token"]) >= 40
    assert not AuthSession.objects.filter(user=user).exists()
    # Only the token's hash is kept.
    challenge = MFAChallenge.objects.get(user=user)
    assert body["mfa_token"] not in challenge.token_hash
    assert (challenge.amr, challenge.purpose) == (["pwd"], "login")


def test_a_wrong_password_answers_the_ordinary_401_so_mfa_reveals_nothing(user, clock):
    other = UserFactory()
    mfa_on(user)
    with_mfa, without = login(user, "wrong"), login(other, "wrong")
    assert (with_mfa.status_code, with_mfa.json()) == (without.status_code, without.json())
    assert with_mfa.status_code == 401
    assert not MFAChallenge.objects.exists()


def test_verify_with_the_code_opens_the_session_and_its_tokens_say_mfa(user, clock):
    secret = mfa_on(user)
    response = verify(mfa_token(user), code=code(secret))
    assert response.status_code == 200, response.content
    pair = response.json()
    assert set(pair) == {"access", "refresh", "token_type", "expires_in", "session_id"}
    assert amr(pair["access"]) == ["pwd", "otp", "mfa"]
    assert bearer(pair["access"]).get(ME).status_code == 200
    refreshed = APIClient().post("/api/v1/auth/refresh", {"refresh": pair["refresh"]}, format="json").json()
    assert amr(refreshed["access"]) == ["pwd", "otp", "mfa"]  # a refresh keeps how the session was opened
    login_row = AuditEvent.objects.get(user=user, kind="login")
    assert login_row.detail["method"] == "totp"


def test_a_code_works_once_whichever_login_presents_it(user, clock):
    secret = mfa_on(user)
    assert verify(mfa_token(user), code=code(secret)).status_code == 200
    replay = verify(mfa_token(user), code=code(secret))
    assert (replay.status_code, replay.json()["code"]) == (401, "mfa_code_invalid")
    assert replay["WWW-Authenticate"].startswith("Bearer")
    assert AuthSession.objects.filter(user=user).count() == 1


def test_a_token_works_once(user, clock):
    secret = mfa_on(user)
    token = mfa_token(user)
    assert verify(token, code=code(secret)).status_code == 200
    clock.at = NOW + 30  # a fresh code: what is refused is the token
    again = verify(token, code=code(secret, at=clock.at))
    assert (again.status_code, again.json()["code"]) == (401, "mfa_token_invalid")


@pytest.mark.parametrize(("steps", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_codes_one_step_either_side_are_accepted_for_drift(user, clock, steps, accepted):
    secret = mfa_on(user)
    response = verify(mfa_token(user), code=code(secret, steps))
    assert (response.status_code == 200) is accepted, response.content


def test_a_code_of_a_step_before_the_last_used_one_is_refused(user, clock):
    secret = mfa_on(user)
    assert verify(mfa_token(user), code=code(secret, 1)).status_code == 200
    # The current step's code is within the drift window, but older than the step just used.
    assert verify(mfa_token(user), code=code(secret, 0)).json()["code"] == "mfa_code_invalid"
    assert verify(mfa_token(user), code=code(secret, -1)).json()["code"] == "mfa_code_invalid"
    clock.at = NOW + 60
    assert verify(mfa_token(user), code=code(secret, at=clock.at)).status_code == 200


def test_the_token_expires_after_mfa_token_seconds(user, clock, settings):
    settings.MFA_TOKEN_SECONDS = 120
    secret = mfa_on(user)
    token = mfa_token(user)
    challenge = MFAChallenge.objects.get(user=user)
    assert timedelta(seconds=119) < challenge.expires_at - challenge.created_at <= timedelta(seconds=120)
    MFAChallenge.objects.filter(id=challenge.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = verify(token, code=code(secret))
    assert (response.status_code, response.json()["code"]) == (401, "mfa_token_invalid")
    assert failures(user) == 0  # a dead token tests no code
    assert TOTPDevice.objects.get(user=user).last_used_step is None


def test_five_wrong_codes_spend_the_token(user, clock):
    secret = mfa_on(user)
    token = mfa_token(user)
    for _ in range(5):
        assert verify(token, code="000000" if code(secret) != "000000" else "111111").json()["code"] == (
            "mfa_code_invalid"
        )
    response = verify(token, code=code(secret))
    assert (response.status_code, response.json()["code"]) == (401, "mfa_token_invalid")
    assert failures(user) == 5
    # The right code was not spent on a dead token: a new login takes it.
    assert verify(mfa_token(user), code=code(secret)).status_code == 200


def test_wrong_codes_count_toward_the_login_lockout_and_a_right_password_does_not_reset_them(
    user, clock, settings
):
    settings.LOGIN_MAX_ATTEMPTS = 7
    secret = mfa_on(user)
    wrong = "123456" if code(secret) != "123456" else "654321"
    token = mfa_token(user)
    for _ in range(5):
        assert verify(token, code=wrong).status_code == 401
    assert failures(user) == 5
    token = mfa_token(user)  # the right password again: the count stays
    assert failures(user) == 5
    assert verify(token, code=wrong).status_code == 401
    last = verify(token, code=wrong)  # the seventh failure locks the account
    assert last.status_code == 401
    locked = verify(token, code=code(secret))
    assert (locked.status_code, locked.json()["code"]) == (429, "locked_out")
    assert int(locked["Retry-After"]) > 0
    assert login(user).status_code == 429  # the password too: one count, one lockout
    assert AuditEvent.objects.filter(user=user, kind="lockout").count() == 1


def test_a_completed_login_resets_the_count(user, clock):
    secret = mfa_on(user)
    token = mfa_token(user)
    assert verify(token, code="999999" if code(secret) != "999999" else "888888").status_code == 401
    assert failures(user) == 1
    assert verify(token, code=code(secret)).status_code == 200
    assert failures(user) == 0


def test_the_token_is_bound_to_its_account(user, clock):
    mfa_on(user)
    other = UserFactory()
    other_secret = mfa_on(other)
    response = verify(mfa_token(user), code=code(other_secret))
    assert response.json()["code"] == "mfa_code_invalid"
    assert failures(user) == 1
    assert failures(other) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"mfa_token": "x"},
        {"mfa_token": "x", "code": "123456", "recovery_code": "abcd-efgh-jkmn"},
        {"code": "123456"},
        {"mfa_token": "x" * 300, "code": "123456"},
        {"mfa_token": "x", "code": "1" * 65},
        {"mfa_token": ["x"], "code": "123456"},
        {"mfa_token": {"a": {"b": 1}}, "code": 123456},
    ],
)
def test_malformed_verify_bodies_are_a_400(body):
    response = APIClient().post(VERIFY, body, format="json")
    assert response.status_code == 400, response.content


def test_an_unknown_token_is_a_401(user):
    response = verify("not-a-token", code="123456")
    assert (response.status_code, response.json()["code"]) == (401, "mfa_token_invalid")


def test_a_deactivated_account_cannot_finish_its_login(user, clock):
    secret = mfa_on(user)
    token = mfa_token(user)
    type(user).objects.filter(id=user.id).update(is_active=False)
    response = verify(token, code=code(secret))
    assert response.status_code == 401
    assert not AuthSession.objects.filter(user=user).exists()


# --- recovery codes ------------------------------------------------------------------------------------


def test_a_recovery_code_opens_a_session_once_and_tells_the_user(user, clock):
    client, _, codes = enrolled(user, clock)
    mail.outbox.clear()
    response = verify(mfa_token(user), recovery_code=codes[0].upper().replace("-", " "))  # as typed
    assert response.status_code == 200, response.content
    assert amr(response.json()["access"]) == ["pwd", "otp", "mfa"]
    assert client.get(STATUS).json()["recovery_codes_left"] == 9
    note = Notification.objects.get(user=user, data__event="recovery_code_used")
    assert note.kind == "security"
    assert [m.subject for m in mail.outbox] == ["A recovery code was used to sign in"]
    event = OutboxEvent.objects.get(key="recovery_code_used")
    assert event.payload["recovery_codes_left"] == 9
    assert AuditEvent.objects.get(user=user, kind="recovery_code_used").detail == {"recovery_codes_left": 9}

    again = verify(mfa_token(user), recovery_code=codes[0])
    assert (again.status_code, again.json()["code"]) == (401, "mfa_code_invalid")
    assert verify(mfa_token(user), recovery_code=codes[1]).status_code == 200


def test_recovery_codes_are_stored_as_keyed_hashes_only(user, clock):
    _, _, codes = enrolled(user, clock)
    stored = list(RecoveryCode.objects.filter(user=user).values_list("code_hash", flat=True))
    assert len(stored) == 10
    for plain in codes:
        bare = plain.replace("-", "")
        assert all(plain not in h and bare not in h for h in stored)
        assert hashlib.sha256(bare.encode()).hexdigest() not in stored  # keyed, not a plain digest


def test_regeneration_makes_a_new_set_and_the_old_one_stops_working(user, clock):
    client, secret, old = enrolled(user, clock)
    wrong = client.post(CODES, {"code": "000000" if code(secret, 1) != "000000" else "111111"}, format="json")
    assert wrong.status_code == 400
    new = client.post(CODES, {"code": code(secret, 1)}, format="json")
    assert new.status_code == 200, new.content
    fresh = new.json()["recovery_codes"]
    assert len(fresh) == 10
    assert not set(fresh) & set(old)
    assert verify(mfa_token(user), recovery_code=old[2]).json()["code"] == "mfa_code_invalid"
    assert verify(mfa_token(user), recovery_code=fresh[2]).status_code == 200
    assert AuditEvent.objects.filter(user=user, kind="recovery_codes_generated").count() == 1


def test_regeneration_takes_a_recovery_code_too(user, clock):
    client, _, old = enrolled(user, clock)
    assert client.post(CODES, {"code": old[0]}, format="json").status_code == 200


# --- disable ---------------------------------------------------------------------------------------------


def test_disable_needs_the_password_and_a_code_then_login_is_the_password_alone(user, clock):
    client, secret, _ = enrolled(user, clock)
    assert (
        client.delete(TOTP, {"current_password": "wrong", "code": code(secret, 1)}, format="json").status_code
        == 400
    )
    assert (
        client.delete(TOTP, {"current_password": PASSWORD, "code": "000000"}, format="json").status_code
        == 400
    )
    assert failures(user) == 2
    response = client.delete(TOTP, {"current_password": PASSWORD, "code": code(secret, 1)}, format="json")
    assert response.status_code == 204, response.content
    assert client.get(STATUS).json() == {"totp": False, "recovery_codes_left": 0, "required": False}
    assert client.get(ME).json()["mfa"] is False
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not RecoveryCode.objects.filter(user=user).exists()
    assert OutboxEvent.objects.get(key="mfa_disabled").payload["by"] == "owner"
    assert AuditEvent.objects.get(user=user, kind="mfa_disabled").detail == {"by": "owner"}
    assert Notification.objects.filter(user=user, data__event="mfa_disabled").count() == 1
    assert login(user).status_code == 200
    again = client.delete(TOTP, {"current_password": PASSWORD, "code": "123456"}, format="json")
    assert (again.status_code, again.json()["code"]) == (400, "mfa_not_enabled")


def test_someone_who_lost_the_device_turns_it_off_with_a_recovery_code(user, clock):
    client, _, codes = enrolled(user, clock)
    response = client.delete(TOTP, {"current_password": PASSWORD, "code": codes[3]}, format="json")
    assert response.status_code == 204


def test_waiting_logins_end_with_mfa(user, clock):
    client, secret, _ = enrolled(user, clock)
    token = mfa_token(user)
    client.delete(TOTP, {"current_password": PASSWORD, "code": code(secret, 1)}, format="json")
    assert verify(token, code=code(secret, -1)).json()["code"] == "mfa_token_invalid"


# --- ordinary users -----------------------------------------------------------------------------------


def test_users_without_totp_log_in_as_before(user):
    response = login(user)
    assert response.status_code == 200
    assert amr(response.json()["access"]) == ["pwd"]
    assert not MFAChallenge.objects.exists()


def test_the_endpoints_need_a_token(api_client):
    for method, path in [
        ("get", STATUS),
        ("post", TOTP),
        ("post", CONFIRM),
        ("post", CODES),
        ("delete", TOTP),
    ]:
        assert getattr(api_client, method)(path, {}, format="json").status_code == 401


def test_a_slow_client_within_the_step_window_still_gets_in(user, clock):
    secret = mfa_on(user)
    token = mfa_token(user)
    typed = code(secret)
    clock.at = NOW + 30  # the code was read just before the step changed
    assert verify(token, code=typed).status_code == 200


def test_old_challenges_are_purged_a_day_after_they_expire(user, clock):
    from accounts.tasks import purge_old_records

    mfa_on(user)
    mfa_token(user)
    kept = mfa_token(user)
    old = MFAChallenge.objects.exclude(token_hash=hashlib.sha256(kept.encode()).hexdigest()).get()
    MFAChallenge.objects.filter(id=old.id).update(expires_at=timezone.now() - timedelta(days=1, seconds=1))
    assert purge_old_records.apply().get()["mfa_challenges"] == 1
    assert list(MFAChallenge.objects.values_list("token_hash", flat=True)) == [
        hashlib.sha256(kept.encode()).hexdigest()
    ]


def test_with_the_cache_down_a_code_still_works_once_and_admins_still_need_it(user, admin_user, clock):
    """Nothing of MFA lives in the cache: a Redis outage neither stops it nor lets a code in twice."""
    secret = mfa_on(user)
    with override_settings(CACHES=CACHE_DOWN):
        first = verify(mfa_token(user), code=code(secret))
        replay = verify(mfa_token(user), code=code(secret))
        password_only = login(admin_user)  # no TOTP yet: a password-only session
        refused = bearer(password_only.json()["access"]).get("/api/v1/users")
    assert first.status_code == 200, first.content
    assert replay.json()["code"] == "mfa_code_invalid"
    assert refused.json()["code"] == "mfa_required"
