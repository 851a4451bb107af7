"""The browser redirect flow (`/auth/social/login/<backend>/` → complete → the frontend)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.test import Client
from social_django.models import UserSocialAuth

from accounts.models import AuthSession, User
from accounts.tests.social_support import (
    AUTHORIZE_URL,
    BOT_TOKEN,
    PAIR_FIELDS,
    TOKEN_URL,
    YANDEX_KEY,
    YANDEX_SECRET,
    mock_user_info,
    telegram_payload,
)
from accounts.tests.support import bearer

pytestmark = pytest.mark.django_db
BEGIN = "/api/v1/auth/social/login/yandex-oauth2/"
COMPLETE = "/api/v1/auth/social/complete/yandex-oauth2/"
FRONTEND = "https://app.example.com/after-login"


@pytest.fixture(autouse=True)
def _app(settings):
    settings.SOCIAL_AUTH_YANDEX_OAUTH2_KEY = YANDEX_KEY
    settings.SOCIAL_AUTH_YANDEX_OAUTH2_SECRET = YANDEX_SECRET
    settings.TELEGRAM_BOT_TOKEN = BOT_TOKEN
    settings.SOCIAL_AUTH_FRONTEND_URL = FRONTEND


@pytest.fixture
def yandex():
    with responses.RequestsMock() as mock:
        yield mock


def fragment(response) -> dict[str, str]:
    assert response.status_code == 302, response.content
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == FRONTEND
    assert not url.query, "nothing for the frontend travels in the query (server logs, Referer)"
    return {key: values[0] for key, values in parse_qs(url.fragment).items()}


def begin(client: Client) -> dict[str, str]:
    response = client.get(BEGIN)
    assert response.status_code == 302, response.content
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == AUTHORIZE_URL
    return {key: values[0] for key, values in parse_qs(location.query).items()}


def test_the_flow_hands_the_token_pair_to_the_frontend_in_the_fragment(yandex):
    client = Client()
    params = begin(client)
    assert params["client_id"] == YANDEX_KEY
    assert params["response_type"] == "code"
    assert params["redirect_uri"] == f"http://testserver{COMPLETE}"
    assert len(params["state"]) >= 32
    yandex.add(responses.POST, TOKEN_URL, json={"access_token": "tok", "token_type": "bearer"})
    mock_user_info(yandex)

    response = client.get(COMPLETE, {"code": "4711", "state": params["state"]})

    tokens = fragment(response)
    assert set(tokens) == PAIR_FIELDS
    assert "no-store" in response["Cache-Control"]
    exchange = parse_qs(yandex.calls[0].request.body)
    assert exchange["code"] == ["4711"]
    assert exchange["client_secret"] == [YANDEX_SECRET]
    me = bearer(tokens["access"]).get("/api/v1/users/me")
    assert me.status_code == 200
    assert me.json()["username"] == "ivan.petrov"
    assert AuthSession.objects.filter(id=tokens["session_id"]).exists()
    # Nobody is logged in to a Django session by it (that would open the admin to a staff user).
    assert "_auth_user_id" not in client.session


def test_a_wrong_state_is_refused_before_any_call_to_the_provider(yandex):
    client = Client()
    begin(client)
    response = client.get(COMPLETE, {"code": "4711", "state": "forged" * 6})
    assert fragment(response) == {"error": "provider_auth_failed"}
    assert not yandex.calls
    assert not User.objects.exists()


def test_a_missing_state_is_refused(yandex):
    client = Client()
    begin(client)
    assert fragment(client.get(COMPLETE, {"code": "4711"})) == {"error": "provider_auth_failed"}


def test_a_state_from_another_browser_is_refused(yandex):
    params = begin(Client())
    response = Client().get(COMPLETE, {"code": "4711", "state": params["state"]})
    assert fragment(response) == {"error": "provider_auth_failed"}
    assert not yandex.calls


def test_a_state_works_once(yandex):
    client = Client()
    params = begin(client)
    yandex.add(responses.POST, TOKEN_URL, json={"access_token": "tok"})
    mock_user_info(yandex)
    assert "access" in fragment(client.get(COMPLETE, {"code": "4711", "state": params["state"]}))

    again = client.get(COMPLETE, {"code": "4711", "state": params["state"]})
    assert fragment(again) == {"error": "provider_auth_failed"}
    assert len(yandex.calls) == 2


def test_a_next_parameter_never_redirects_the_tokens_elsewhere(yandex):
    client = Client()
    response = client.get(BEGIN, {"next": "https://evil.example.com/steal"})
    state = parse_qs(urlsplit(response["Location"]).query)["state"][0]
    yandex.add(responses.POST, TOKEN_URL, json={"access_token": "tok"})
    mock_user_info(yandex)
    response = client.get(COMPLETE, {"code": "4711", "state": state, "next": "https://evil.example.com/x"})
    assert "access" in fragment(response)


def test_the_provider_declining_is_handed_over_as_an_error(yandex):
    client = Client()
    params = begin(client)
    response = client.get(COMPLETE, {"error": "access_denied", "state": params["state"]})
    assert fragment(response) == {"error": "provider_auth_failed"}


def test_not_configured_is_handed_over_as_an_error(settings):
    settings.SOCIAL_AUTH_YANDEX_OAUTH2_SECRET = ""
    assert fragment(Client().get(BEGIN)) == {"error": "provider_not_configured"}


TELEGRAM_BEGIN = "/api/v1/auth/social/login/telegram/"
TELEGRAM_COMPLETE = "/api/v1/auth/social/complete/telegram/"


def telegram_begin(client: Client) -> str:
    """The widget's state, as the page gets it: the `auth_url` to give the widget, and a cookie."""
    response = client.get(TELEGRAM_BEGIN)
    assert response.status_code == 200, response.content
    auth_url = urlsplit(response.json()["auth_url"])
    assert auth_url.path == TELEGRAM_COMPLETE
    cookie = response.cookies["tg_login_state"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    return parse_qs(auth_url.query)["state"][0]


def test_the_telegram_widget_can_complete_the_flow():
    client = Client()
    state = telegram_begin(client)
    data = telegram_payload()
    response = client.get(TELEGRAM_COMPLETE, {**data, "state": state})
    tokens = fragment(response)
    assert set(tokens) == PAIR_FIELDS
    assert UserSocialAuth.objects.get().provider == "telegram"
    assert response.cookies["tg_login_state"].value == ""  # spent
    # and its check is ours: the same payload again is a replay
    state = telegram_begin(client)
    assert fragment(client.get(TELEGRAM_COMPLETE, {**data, "state": state})) == {
        "error": "telegram_auth_invalid"
    }


@pytest.mark.parametrize("how", ["no state", "no cookie", "another browser's state"])
def test_a_telegram_payload_not_bound_to_this_browser_is_refused(how):
    """Login CSRF: a link carrying someone else's freshly signed payload logs no browser in."""
    attacker, victim = Client(), Client()
    data = telegram_payload()
    if how == "no state":
        telegram_begin(victim)
        response = victim.get(TELEGRAM_COMPLETE, data)
    elif how == "no cookie":
        response = victim.get(TELEGRAM_COMPLETE, {**data, "state": telegram_begin(attacker)})
    else:
        telegram_begin(victim)
        response = victim.get(TELEGRAM_COMPLETE, {**data, "state": telegram_begin(attacker)})
    assert fragment(response) == {"error": "state_mismatch"}
    assert not AuthSession.objects.exists()
    assert not UserSocialAuth.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", BEGIN),
        ("post", BEGIN),
        ("post", TELEGRAM_COMPLETE),
        ("delete", COMPLETE),
        ("patch", TELEGRAM_BEGIN),
    ],
)
def test_a_wrong_method_on_the_browser_flow_is_a_json_405_even_with_csrf_checks(method, path):
    response = getattr(Client(enforce_csrf_checks=True), method)(path)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD"


def test_an_unknown_backend_is_a_json_404():
    response = Client().get("/api/v1/auth/social/login/github/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_starting_the_flow_obeys_the_login_address_limit(monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"login_ip": "2/min"})
    client = Client()
    begin(client)
    begin(client)
    assert fragment(client.get(BEGIN)) == {"error": "throttled"}


def test_abandoned_round_trips_are_purged(yandex):
    import time
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from social_django.models import Nonce

    from accounts.tasks import purge_social_state

    begin(Client())  # a fresh start: kept
    Nonce.objects.create(
        server_url="social_core.oauth2.yandex-oauth2", timestamp=int(time.time()) - 2 * 86400, salt="old"
    )
    Session.objects.create(
        session_key="x" * 40, session_data="", expire_date=timezone.now() - timedelta(days=1)
    )

    assert purge_social_state.apply().get() == {"nonces": 1, "browser_sessions": 1}
    assert Nonce.objects.count() == 1
    assert Session.objects.count() == 1
