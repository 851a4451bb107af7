"""Yandex login (API.md → Social login), Yandex's HTTP endpoints mocked with `responses`."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

import pytest
import requests
import responses
from django.contrib.auth.hashers import is_password_usable
from rest_framework.test import APIClient
from social_django.models import UserSocialAuth

from accounts.models import AuditEvent, AuthSession, User, UsernameValidator
from accounts.social.backends import USER_INFO_URL
from accounts.tests.factories import UserFactory
from accounts.tests.social_support import (
    PAIR_FIELDS,
    TOKEN_URL,
    YANDEX,
    YANDEX_KEY,
    YANDEX_SECRET,
    mock_user_info,
    yandex_profile,
)
from accounts.tests.support import PASSWORD, bearer
from notifications.models import Notification, OutboxEvent

pytestmark = pytest.mark.django_db
TOKEN = "y0_AgAAAAB-secret-provider-token"


@pytest.fixture(autouse=True)
def _app(settings):
    settings.SOCIAL_AUTH_YANDEX_OAUTH2_KEY = YANDEX_KEY
    settings.SOCIAL_AUTH_YANDEX_OAUTH2_SECRET = YANDEX_SECRET


@pytest.fixture
def yandex():
    with responses.RequestsMock() as mock:
        yield mock


def post(data, client=None):
    return (client or APIClient()).post(YANDEX, data, format="json")


def assert_pair(response) -> dict:
    assert response.status_code == 200, response.content
    assert set(response.json()) == PAIR_FIELDS
    assert response["Cache-Control"] == "no-store"
    return response.json()


def test_an_access_token_creates_an_account(yandex):
    mock_user_info(yandex)

    body = assert_pair(post({"access_token": TOKEN}))

    call = yandex.calls[0]
    # The token travels in a header, never in the URL (proxies and logs keep URLs).
    assert call.request.headers["Authorization"] == f"OAuth {TOKEN}"
    assert TOKEN not in call.request.url
    assert call.request.req_kwargs["timeout"] == (3.05, 5.0)
    user = User.objects.get(id=AuthSession.objects.get(id=body["session_id"]).user_id)
    assert user.username == "ivan.petrov"
    assert user.email == "ivan.petrov@yandex.ru"
    assert user.full_name == "Иван Петров"
    assert not is_password_usable(user.password)
    # Yandex vouches for the address it gives (issue 24): no verification mail, no lock-out.
    assert user.email_verified
    assert OutboxEvent.objects.get(key="new_user").payload["email_verified"] is True
    identity = UserSocialAuth.objects.get(user=user)
    assert (identity.provider, identity.uid) == ("yandex-oauth2", "1000034426")
    assert TOKEN not in str(identity.extra_data)
    assert OutboxEvent.objects.get(key="new_user").payload["username"] == "ivan.petrov"
    kinds = list(AuditEvent.objects.filter(user=user).order_by("id").values_list("kind", flat=True))
    assert kinds == ["registered", "identity_linked", "login"]


def test_a_code_is_exchanged_with_the_app_secret(yandex):
    yandex.add(
        responses.POST, TOKEN_URL, json={"access_token": TOKEN, "token_type": "bearer", "expires_in": 3600}
    )
    mock_user_info(yandex)

    assert_pair(post({"code": "4711", "redirect_uri": "https://app.example.com/cb"}))

    exchange = parse_qs(yandex.calls[0].request.body)
    assert exchange == {
        "grant_type": ["authorization_code"],
        "code": ["4711"],
        "redirect_uri": ["https://app.example.com/cb"],
        "client_id": [YANDEX_KEY],
        "client_secret": [YANDEX_SECRET],
    }
    assert yandex.calls[0].request.req_kwargs["timeout"] == (3.05, 5.0)
    assert yandex.calls[1].request.headers["Authorization"] == f"OAuth {TOKEN}"


def test_a_rejected_code_is_401(yandex):
    yandex.add(
        responses.POST,
        TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": "Code has expired"},
    )
    response = post({"code": "old", "redirect_uri": "https://app.example.com/cb"})
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "provider_auth_failed"
    assert "WWW-Authenticate" in response.headers
    assert not User.objects.exists()


@pytest.mark.parametrize("status", [401, 403])
def test_a_bad_or_expired_token_is_401(yandex, status):
    mock_user_info(yandex, status=status, body="invalid token")
    response = post({"access_token": TOKEN})
    assert response.status_code == 401, response.content
    failure = AuditEvent.objects.get(kind="login_failed")
    assert failure.detail == {"provider": "yandex", "reason": f"http_{status}"}


def test_a_token_issued_to_another_application_is_401(yandex):
    mock_user_info(yandex, yandex_profile(client_id="some-other-site"))
    response = post({"access_token": TOKEN})
    assert response.status_code == 401, response.content
    assert not User.objects.exists()
    assert not AuthSession.objects.exists()


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError("refused"),
    ],
)
def test_an_unreachable_or_slow_provider_is_502(yandex, failure):
    yandex.add(responses.GET, USER_INFO_URL, body=failure)
    response = post({"access_token": TOKEN})
    assert response.status_code == 502, response.content
    assert response.json()["code"] == "provider_unavailable"


def test_a_timeout_during_the_code_exchange_is_502(yandex):
    yandex.add(responses.POST, TOKEN_URL, body=requests.exceptions.ReadTimeout("slow"))
    response = post({"code": "4711", "redirect_uri": "https://app.example.com/cb"})
    assert response.status_code == 502
    assert response.json()["code"] == "provider_unavailable"


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 500, "body": "<html>oops</html>"},
        {"status": 503, "json": {"error": "temporarily_unavailable"}},
        {"status": 200, "body": "<html>not json</html>"},
        {"status": 200, "json": ["a", "list"]},
        {"status": 200, "json": {"login": "no-id", "client_id": YANDEX_KEY}},
    ],
)
def test_garbage_or_errors_from_the_provider_are_502(yandex, answer):
    yandex.add(responses.GET, USER_INFO_URL, **answer)
    response = post({"access_token": TOKEN})
    assert response.status_code == 502, response.content
    assert set(response.json()) == {"detail", "code"}
    assert not User.objects.exists()


def test_garbage_from_the_token_endpoint_is_502(yandex):
    yandex.add(responses.POST, TOKEN_URL, json={"token_type": "bearer"})  # no access_token
    response = post({"code": "4711", "redirect_uri": "https://app.example.com/cb"})
    assert response.status_code == 502


@pytest.mark.parametrize("missing", ["SOCIAL_AUTH_YANDEX_OAUTH2_KEY", "SOCIAL_AUTH_YANDEX_OAUTH2_SECRET"])
def test_without_key_or_secret_yandex_login_is_503(settings, yandex, missing):
    setattr(settings, missing, "")
    response = post({"access_token": TOKEN})
    assert response.status_code == 503
    assert response.json()["code"] == "provider_not_configured"
    assert response["Retry-After"].isdigit()
    assert not yandex.calls


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"code": "x"},
        {"access_token": TOKEN, "code": "x", "redirect_uri": "https://a"},
        {"access_token": ""},
    ],
)
def test_malformed_input_is_400(data):
    assert post(data).status_code == 400


def test_no_provider_token_reaches_a_log_line(yandex, caplog):
    caplog.set_level(logging.DEBUG)
    mock_user_info(yandex)
    assert_pair(post({"access_token": TOKEN}))
    yandex.add(responses.GET, USER_INFO_URL, status=401, body=f"bad token {TOKEN}")
    yandex.add(
        responses.GET, USER_INFO_URL, body=requests.exceptions.ReadTimeout(f"{USER_INFO_URL}?t={TOKEN}")
    )
    yandex.add(responses.POST, TOKEN_URL, status=500, body=TOKEN)
    post({"access_token": TOKEN})
    post({"access_token": TOKEN})
    post({"code": TOKEN, "redirect_uri": "https://app.example.com/cb"})

    assert caplog.records, "the failures were logged"
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in (caplog.text or "")


# --- accounts: never by email, linking, conflicts -----------------------------------


def test_a_profile_with_the_email_of_an_existing_account_never_logs_in_to_it(yandex, user, password):
    """The takeover case: anyone can put someone's address on a provider profile."""
    mock_user_info(yandex, yandex_profile(default_email=user.email.upper(), login="attacker"))
    sessions = AuthSession.objects.filter(user=user).count()

    response = post({"access_token": TOKEN})

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "email_in_use"
    assert "access" not in response.json()
    assert AuthSession.objects.filter(user=user).count() == sessions
    assert not UserSocialAuth.objects.exists()
    assert User.objects.count() == 1
    assert not AuditEvent.objects.filter(user=user, kind="login").exists()
    attempt = AuditEvent.objects.get(user=user, kind="login_failed")
    assert attempt.detail == {"provider": "yandex", "reason": "email_in_use"}


def test_linking_with_the_callers_token_links_and_tells_the_owner(
    yandex, auth_client, user, commit_per_request, mailoutbox
):
    mock_user_info(yandex)

    body = assert_pair(post({"access_token": TOKEN, "current_password": PASSWORD}, auth_client))

    identity = UserSocialAuth.objects.get()
    assert identity.user == user
    assert identity.uid == "1000034426"
    assert AuthSession.objects.get(id=body["session_id"]).user == user
    assert User.objects.count() == 1
    assert not OutboxEvent.objects.filter(key="new_user").exists()
    linked = AuditEvent.objects.get(kind="identity_linked")
    assert linked.user == user
    assert linked.detail == {"provider": "yandex", "uid": "1000034426"}
    note = Notification.objects.get(user=user, title="A Yandex account was linked")
    assert note.kind == "security"
    assert [m.subject for m in mailoutbox] == ["A Yandex account was linked"]
    assert mailoutbox[0].to == [user.email]

    # From now on the identity logs in to that account, without a token.
    mock_user_info(yandex)
    again = assert_pair(post({"access_token": TOKEN}))
    assert AuthSession.objects.get(id=again["session_id"]).user == user
    assert AuditEvent.objects.filter(kind="identity_linked").count() == 1


def test_an_identity_linked_to_another_account_is_400_identity_taken(yandex, auth_client, user):
    other = UserFactory()
    UserSocialAuth.objects.create(user=other, provider="yandex-oauth2", uid="1000034426", id_key="id")
    mock_user_info(yandex)

    response = post({"access_token": TOKEN, "current_password": PASSWORD}, auth_client)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "identity_taken"
    assert UserSocialAuth.objects.get().user == other


def test_a_second_yandex_account_is_not_linked_to_the_same_user(yandex, auth_client, user):
    UserSocialAuth.objects.create(user=user, provider="yandex-oauth2", uid="555", id_key="id")
    mock_user_info(yandex)
    response = post({"access_token": TOKEN, "current_password": PASSWORD}, auth_client)
    assert response.status_code == 400
    assert response.json()["code"] == "provider_already_linked"


def test_a_stale_bearer_token_is_401_not_a_new_account(yandex, auth_client, commit_per_request):
    assert auth_client.post("/api/v1/auth/logout", {}, format="json").status_code == 204
    response = post({"access_token": TOKEN}, auth_client)
    assert response.status_code == 401
    assert not yandex.calls
    assert not UserSocialAuth.objects.exists()
    assert User.objects.count() == 1


def test_a_new_username_is_made_unique_within_the_rules(yandex):
    UserFactory(username="Ivan.Petrov")
    mock_user_info(yandex)
    body = assert_pair(post({"access_token": TOKEN}))
    user = AuthSession.objects.get(id=body["session_id"]).user
    assert user.username.startswith("ivan.petrov-")
    assert user.username.lower() != "ivan.petrov"
    UsernameValidator()(user.username)


def test_a_username_outside_the_rules_is_cleaned(yandex):
    mock_user_info(
        yandex, yandex_profile(login="", display_name="Вася Пупкин ☃", id="77", default_email="", emails=[])
    )
    body = assert_pair(post({"access_token": TOKEN}))
    user = AuthSession.objects.get(id=body["session_id"]).user
    UsernameValidator()(user.username)
    assert user.username == "yandex77"
    assert user.email == ""


def test_two_accounts_without_email_can_exist(yandex):
    for uid in ("1", "2"):
        mock_user_info(yandex, yandex_profile(id=uid, login=f"u{uid}", default_email="", emails=[]))
        assert_pair(post({"access_token": TOKEN}))
    assert User.objects.filter(email="").count() == 2


def test_the_session_limit_applies(yandex, settings):
    settings.MAX_ACTIVE_SESSIONS = 2
    for _ in range(3):
        mock_user_info(yandex)
        assert_pair(post({"access_token": TOKEN}))
    assert AuthSession.objects.active().count() == 2


def test_the_login_address_limit_applies(yandex, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"login_ip": "2/min"})
    for _ in range(2):
        mock_user_info(yandex)
        assert_pair(post({"access_token": TOKEN}))
    response = post({"access_token": TOKEN})
    assert response.status_code == 429
    assert response["Retry-After"].isdigit()


def test_an_inactive_account_cannot_log_in_by_its_identity(yandex):
    owner = UserFactory(is_active=False)
    UserSocialAuth.objects.create(user=owner, provider="yandex-oauth2", uid="1000034426", id_key="id")
    mock_user_info(yandex)
    response = post({"access_token": TOKEN})
    assert response.status_code == 401
    assert AuditEvent.objects.get(kind="login_failed").user == owner


def test_the_bearer_access_token_of_the_answer_works(yandex):
    mock_user_info(yandex)
    body = assert_pair(post({"access_token": TOKEN}))
    me = bearer(body["access"]).get("/api/v1/users/me")
    assert me.status_code == 200
    assert me.json()["username"] == "ivan.petrov"
