"""Telegram login (API.md → Social login): real signatures, built here as Telegram builds them."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.hashers import is_password_usable
from django.test import override_settings
from rest_framework.test import APIClient
from social_django.models import UserSocialAuth

from accounts.models import AuditEvent, AuthSession, User
from accounts.social.telegram import CLOCK_SKEW_SECONDS, TelegramRefused, telegram_verify
from accounts.tests.social_support import BOT_TOKEN, PAIR_FIELDS, TELEGRAM, telegram_payload
from accounts.tests.support import CACHE_DOWN
from notifications.models import OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _bot(settings):
    settings.TELEGRAM_BOT_TOKEN = BOT_TOKEN
    settings.TELEGRAM_AUTH_MAX_AGE = 300


def post(data, client=None):
    return (client or APIClient()).post(TELEGRAM, data, format="json")


def assert_refused(response, reason: str) -> None:
    assert response.status_code == 401, response.content
    assert response.json() == {
        "detail": "The Telegram login data could not be verified.",
        "code": "telegram_auth_invalid",
    }
    assert response["WWW-Authenticate"].startswith("Bearer")
    failure = AuditEvent.objects.filter(kind=AuditEvent.Kind.LOGIN_FAILED).latest("id")
    assert failure.detail == {"provider": "telegram", "reason": reason}
    assert not AuthSession.objects.exists()


def test_a_valid_payload_creates_an_account_and_answers_the_login_token_pair():
    response = post(telegram_payload(last_name="Petrov", photo_url="https://t.me/i/userpic/1.jpg"))

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == PAIR_FIELDS
    assert body["token_type"] == "Bearer"
    assert response["Cache-Control"] == "no-store"
    user = User.objects.get(username="ivan_tg")
    assert user.email == ""
    assert user.full_name == "Ivan Petrov"
    assert not is_password_usable(user.password)
    assert user.roles == ["user"]
    identity = UserSocialAuth.objects.get(provider="telegram", uid="424242")
    assert identity.user == user
    # Who the identity is; not the signature or the date of one login.
    assert identity.extra_data == {"username": "ivan_tg", "first_name": "Ivan", "last_name": "Petrov"}
    session = AuthSession.objects.get(id=body["session_id"])
    assert session.user == user
    me = APIClient(HTTP_AUTHORIZATION=f"Bearer {body['access']}").get("/api/v1/users/me")
    assert me.status_code == 200
    assert me.json()["username"] == "ivan_tg"
    event = OutboxEvent.objects.get(key="new_user")
    assert event.payload["user_id"] == str(user.id)
    assert event.payload["email"] == ""
    kinds = list(AuditEvent.objects.filter(user=user).order_by("id").values_list("kind", flat=True))
    assert kinds == ["registered", "identity_linked", "login"]
    login = AuditEvent.objects.get(user=user, kind="login")
    assert login.detail == {"session_id": body["session_id"], "provider": "telegram"}


def test_the_same_identity_logs_in_to_the_same_account():
    first = post(telegram_payload(auth_date=time.time() - 5))
    second = post(telegram_payload(first_name="Ivan the Second"))

    assert first.status_code == second.status_code == 200
    assert User.objects.count() == 1
    assert AuthSession.objects.filter(user__username="ivan_tg").count() == 2
    assert OutboxEvent.objects.filter(key="new_user").count() == 1


def test_a_tampered_field_is_refused():
    data = telegram_payload()
    data["id"] = 1  # someone else's account, with Ivan's signature
    assert_refused(post(data), "bad_signature")
    assert not User.objects.exists()


def test_a_tampered_name_is_refused():
    data = telegram_payload()
    data["username"] = "admin"
    assert_refused(post(data), "bad_signature")


def test_a_payload_signed_with_another_bot_token_is_refused():
    assert_refused(post(telegram_payload(bot_token="999:another-bot")), "bad_signature")


def test_a_payload_older_than_the_max_age_is_refused_and_one_within_it_is_not(settings):
    assert_refused(post(telegram_payload(auth_date=time.time() - 301)), "expired")
    assert post(telegram_payload(auth_date=time.time() - 290)).status_code == 200


def test_the_max_age_is_the_setting(settings):
    settings.TELEGRAM_AUTH_MAX_AGE = 60
    assert_refused(post(telegram_payload(auth_date=time.time() - 61)), "expired")


def test_a_future_auth_date_is_refused_beyond_a_small_skew():
    assert CLOCK_SKEW_SECONDS <= 60
    assert_refused(post(telegram_payload(auth_date=time.time() + 120)), "future")
    assert post(telegram_payload(auth_date=time.time() + 5)).status_code == 200


def test_a_replayed_payload_is_refused():
    data = telegram_payload()
    assert post(data).status_code == 200
    sessions = AuthSession.objects.count()

    replay = post(data)
    assert replay.status_code == 401, replay.content
    assert AuditEvent.objects.filter(kind="login_failed").latest("id").detail["reason"] == "replay"
    assert AuthSession.objects.count() == sessions


def test_fields_outside_the_widget_set_are_a_400_naming_them():
    # Not dropped in silence (API.md → Conventions): the client learns they were not taken.
    data = telegram_payload(unsigned={"is_admin": True, "role": "admin", "email": "x@example.com"})
    response = post(data)
    assert response.status_code == 400, response.content
    assert response.json() == {name: ["Unknown field."] for name in ("is_admin", "role", "email")}
    assert not User.objects.exists()

    # Signed into the check or not, a field outside the widget's set is refused by name.
    signed_extra = telegram_payload(id=777, role="admin")
    response = post(signed_extra)
    assert (response.status_code, response.json()) == (400, {"role": ["Unknown field."]})
    assert not UserSocialAuth.objects.exists()


def test_when_the_cache_is_down_the_login_is_refused(settings):
    with override_settings(CACHES=CACHE_DOWN):
        response = post(telegram_payload())
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "service_unavailable"
    assert response["Retry-After"] == "5"
    assert not AuthSession.objects.exists()
    assert not User.objects.exists()


def test_without_a_bot_token_telegram_login_is_503(settings):
    settings.TELEGRAM_BOT_TOKEN = ""
    response = post(telegram_payload())
    assert response.status_code == 503
    assert response.json()["code"] == "provider_not_configured"
    assert response["Retry-After"].isdigit()


@pytest.mark.parametrize(
    "change",
    [
        {"hash": None},
        {"id": None},
        {"auth_date": None},
        {"id": "abc"},
        {"auth_date": [1, 2]},
        {"first_name": {"a": 1}},
        {"hash": "x" * 500},
    ],
)
def test_malformed_widget_data_is_400(change):
    data = telegram_payload()
    for key, value in change.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    response = post(data)
    assert response.status_code == 400, response.content
    assert not AuthSession.objects.exists()


def test_a_hash_of_the_wrong_shape_is_refused():
    data = telegram_payload()
    data["hash"] = data["hash"].upper()
    assert_refused(post(data), "malformed_hash")


def test_a_line_feed_inside_a_field_is_refused():
    # "a\nid=1" could otherwise make two field sets give one data-check string.
    with pytest.raises(TelegramRefused) as caught:
        telegram_verify(telegram_payload(first_name="Ivan\nid=1"), bot_token=BOT_TOKEN, max_age=300)
    assert caught.value.reason == "malformed_field"


def test_verification_compares_in_constant_time(monkeypatch):
    import hmac as hmac_module

    calls = []
    original = hmac_module.compare_digest
    monkeypatch.setattr(
        "accounts.social.telegram.hmac.compare_digest", lambda a, b: calls.append((a, b)) or original(a, b)
    )
    data = telegram_payload()
    telegram_verify(data, bot_token=BOT_TOKEN, max_age=300)
    assert calls
    assert calls[0][1] == data["hash"]


def test_login_to_a_deactivated_account_is_refused():
    assert post(telegram_payload(auth_date=time.time() - 3)).status_code == 200
    User.objects.update(is_active=False)
    response = post(telegram_payload())
    assert response.status_code == 401
    assert AuditEvent.objects.filter(kind="login_failed").latest("id").detail["reason"] == "inactive"
