"""Re-authentication (API.md → Accounts "Re-authentication", Social login): a change of how an account
is reached needs `current_password`, or, for an account without a usable password, a session
opened less than `REAUTH_MAX_AGE` seconds ago; otherwise 403 `reauth_required`.

The doors here: linking an identity with the caller's token (Yandex and Telegram). The access
token's `auth_time` is when its session was opened.
"""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
import responses
from django.utils import timezone
from social_django.models import UserSocialAuth

from accounts.models import AuditEvent, AuthSession
from accounts.services import session_open
from accounts.tests.factories import UserFactory
from accounts.tests.social_support import (
    BOT_TOKEN,
    TELEGRAM,
    YANDEX,
    YANDEX_KEY,
    YANDEX_SECRET,
    mock_user_info,
    telegram_payload,
)
from accounts.tests.support import PASSWORD, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _providers(settings):
    settings.SOCIAL_AUTH_YANDEX_OAUTH2_KEY = YANDEX_KEY
    settings.SOCIAL_AUTH_YANDEX_OAUTH2_SECRET = YANDEX_SECRET
    settings.TELEGRAM_BOT_TOKEN = BOT_TOKEN
    settings.REAUTH_MAX_AGE = 300


@pytest.fixture
def yandex():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def social_only_user():
    user = UserFactory()
    user.set_unusable_password()
    user.save()
    return user


def open_session(user, *, age_seconds: int = 0) -> str:
    pair = session_open(user=user, ip=None, user_agent="tests")
    if age_seconds:
        AuthSession.objects.filter(id=pair.session_id).update(
            created_at=timezone.now() - timedelta(seconds=age_seconds)
        )
    return pair.access


def test_the_access_token_carries_auth_time_and_a_refresh_keeps_it(api_client, user):
    pair = session_open(user=user, ip=None, user_agent="tests")
    opened = AuthSession.objects.get(id=pair.session_id).created_at
    claims = jwt.decode(pair.access, options={"verify_signature": False})
    assert claims["auth_time"] == int(opened.timestamp())
    refreshed = api_client.post("/api/v1/auth/refresh", {"refresh": pair.refresh}, format="json").json()
    assert (
        jwt.decode(refreshed["access"], options={"verify_signature": False})["auth_time"]
        == claims["auth_time"]
    )


# --- an account with a password: the password, checked as login checks it --------------------------


def test_linking_without_current_password_is_403_and_asks_no_provider(yandex, user):
    response = bearer(open_session(user)).post(YANDEX, {"access_token": "tok"}, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "reauth_required"
    assert not yandex.calls  # refused before any provider call
    assert not UserSocialAuth.objects.exists()


def test_a_fresh_session_is_no_proof_for_an_account_with_a_password(yandex, user):
    """A stolen access token is always a fresh-looking session: the password is the proof."""
    response = bearer(open_session(user)).post(TELEGRAM, telegram_payload(), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "reauth_required"


def test_a_wrong_current_password_is_400_and_counts_toward_the_lockout(yandex, user, settings):
    settings.LOGIN_MAX_ATTEMPTS = 2
    client = bearer(open_session(user))
    for _ in range(2):
        response = client.post(YANDEX, {"access_token": "tok", "current_password": "wrong"}, format="json")
        assert response.status_code == 400, response.content
        assert "current_password" in response.json()
    assert AuditEvent.objects.filter(user=user, kind="login_failed").count() == 2
    locked = client.post(YANDEX, {"access_token": "tok", "current_password": PASSWORD}, format="json")
    assert locked.status_code == 429
    assert locked["Retry-After"]
    assert not UserSocialAuth.objects.exists()


def test_linking_with_the_current_password_links(yandex, user):
    mock_user_info(yandex)
    response = bearer(open_session(user)).post(
        YANDEX, {"access_token": "tok", "current_password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    assert UserSocialAuth.objects.get().user == user


# --- an account without a password: a recent session ----------------------------------------------


def test_an_account_without_a_password_links_from_a_recent_session():
    user = social_only_user()
    response = bearer(open_session(user, age_seconds=60)).post(TELEGRAM, telegram_payload(), format="json")
    assert response.status_code == 200, response.content
    assert UserSocialAuth.objects.get().user == user


def test_an_account_without_a_password_and_an_old_session_is_403_reauth_required():
    user = social_only_user()
    client = bearer(open_session(user, age_seconds=301))
    response = client.post(TELEGRAM, telegram_payload(), format="json")
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "reauth_required"
    # No password to send instead: one sent anyway is not proof.
    response = client.post(TELEGRAM, telegram_payload(id=77, current_password="anything"), format="json")
    assert response.status_code == 403
    assert not UserSocialAuth.objects.exists()


# --- the other doors: email change and delete me -------------------------------------------------

ME = "/api/v1/users/me"


def test_an_email_change_with_a_password_still_needs_it_400():
    user = UserFactory(password=PASSWORD)
    client = bearer(open_session(user))
    response = client.patch(ME, {"email": "new@example.com"}, format="json")
    assert response.status_code == 400, response.content
    assert "current_password" in response.json()


def test_an_account_without_a_password_changes_its_email_from_a_recent_session():
    user = social_only_user()
    response = bearer(open_session(user, age_seconds=30)).patch(
        ME, {"email": "mine@example.com"}, format="json"
    )
    assert response.status_code == 200, response.content


def test_an_account_without_a_password_and_an_old_session_cannot_change_its_email():
    user = social_only_user()
    before = user.email
    response = bearer(open_session(user, age_seconds=301)).patch(
        ME, {"email": "thief@example.com"}, format="json"
    )
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "reauth_required"
    user.refresh_from_db()
    assert user.email == before


def test_an_account_without_a_password_deletes_itself_from_a_recent_session_only():
    user = social_only_user()
    old = bearer(open_session(user, age_seconds=301)).delete(ME, {}, format="json")
    assert old.status_code == 403, old.content
    assert old.json()["code"] == "reauth_required"
    user.refresh_from_db()
    assert user.deleted_at is None
    fresh = bearer(open_session(user)).delete(ME, {}, format="json")
    assert fresh.status_code == 204, fresh.content
    user.refresh_from_db()
    assert user.deleted_at is not None


def test_delete_me_with_a_password_account_needs_the_password():
    user = UserFactory(password=PASSWORD)
    client = bearer(open_session(user))
    missing = client.delete(ME, {}, format="json")
    assert missing.status_code == 400, missing.content
    assert "password" in missing.json()
    assert client.delete(ME, {"password": PASSWORD}, format="json").status_code == 204
