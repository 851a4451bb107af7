"""Per-address limits on login, registration and password reset (API.md, "Accounts and tokens" → Rules).

DRF reads the rates once, at import; the tests set them on
`SimpleRateThrottle.THROTTLE_RATES`, and the trusted-proxy count on
`api_settings.NUM_PROXIES` (what `TRUSTED_PROXY_COUNT` feeds).
"""

from __future__ import annotations

import pytest
from rest_framework.settings import api_settings
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import AuditEvent, AuthSession, User
from accounts.tests.factories import UserFactory

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
RESET = "/api/v1/auth/password/reset"
RESET_CONFIRM = "/api/v1/auth/password/reset/confirm"
RESTORE = "/api/v1/auth/restore"
STRONG = "correct horse battery staple"
LIMIT = 3

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


@pytest.fixture(autouse=True)
def _small_rates(monkeypatch):
    rate = f"{LIMIT}/min"
    monkeypatch.setattr(
        SimpleRateThrottle,
        "THROTTLE_RATES",
        {"login_ip": rate, "register_ip": rate, "password_reset_ip": rate},
    )


@pytest.fixture
def proxies(monkeypatch, settings):
    """Set the trusted proxy count as `TRUSTED_PROXY_COUNT` does: for DRF and for `client_ip`."""

    def _set(count: int) -> None:
        monkeypatch.setattr(api_settings, "NUM_PROXIES", count)
        settings.TRUSTED_PROXY_COUNT = count

    return _set


def post(path: str, data: dict, **extra):
    return APIClient().post(path, data, format="json", **extra)


def assert_throttled(response) -> None:
    assert response.status_code == 429, response.content
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "throttled"
    retry_after = response["Retry-After"]
    assert retry_after.isdigit(), retry_after
    assert 1 <= int(retry_after) <= 60


def test_login_beyond_the_rate_is_429_even_for_the_right_password(user, password):
    others = [UserFactory(password=password) for _ in range(LIMIT)]
    # One address spraying several accounts: the per-account lockout never sees it.
    for other in others:
        assert post(LOGIN, {"username": other.username, "password": "wrong"}).status_code == 401

    response = post(LOGIN, {"username": user.username, "password": password})

    assert_throttled(response)
    assert not AuthSession.objects.filter(user=user).exists()


def test_successful_logins_count_too(user, password):
    for _ in range(LIMIT):
        assert post(LOGIN, {"username": user.username, "password": password}).status_code == 200

    assert_throttled(post(LOGIN, {"username": user.username, "password": password}))
    assert AuthSession.objects.filter(user=user).count() == LIMIT


def test_register_beyond_the_rate_is_429():
    for n in range(LIMIT):
        data = {"username": f"new{n}", "email": f"new{n}@example.com", "password": STRONG}
        assert post(REGISTER, data).status_code == 201

    response = post(REGISTER, {"username": "one-more", "email": "one-more@example.com", "password": STRONG})

    assert_throttled(response)
    assert not User.objects.filter(username="one-more").exists()


def test_password_reset_beyond_the_rate_is_429(user, mailoutbox):
    for _ in range(LIMIT):
        assert post(RESET, {"email": "nobody@example.com"}).status_code == 202

    response = post(RESET, {"email": user.email})

    assert_throttled(response)
    assert mailoutbox == []
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.PASSWORD_RESET_REQUESTED, user=user).exists()


def test_reset_confirm_shares_the_reset_limit():
    for _ in range(LIMIT):
        response = post(RESET_CONFIRM, {"uid": "x", "token": "y", "new_password": STRONG})
        assert response.status_code == 400

    assert_throttled(post(RESET_CONFIRM, {"uid": "x", "token": "y", "new_password": STRONG}))


def test_restore_shares_the_login_limit(password):
    for _ in range(LIMIT):
        assert post(LOGIN, {"username": "nobody", "password": "wrong"}).status_code == 401

    assert_throttled(post(RESTORE, {"username": "nobody", "password": password}))


def test_the_limits_are_per_scope(user, password):
    for _ in range(LIMIT):
        post(LOGIN, {"username": "nobody", "password": "wrong"})
    assert_throttled(post(LOGIN, {"username": user.username, "password": password}))

    assert post(RESET, {"email": user.email}).status_code == 202
    data = {"username": "fresh", "email": "fresh@example.com", "password": STRONG}
    assert post(REGISTER, data).status_code == 201


@pytest.mark.parametrize(
    ("path", "data"),
    [
        (LOGIN, {"username": "nobody", "password": "wrong"}),
        (RESET, {"email": "nobody@example.com"}),
    ],
)
def test_another_address_has_its_own_bucket(path, data):
    for _ in range(LIMIT):
        post(path, data, REMOTE_ADDR="203.0.113.1")
    assert_throttled(post(path, data, REMOTE_ADDR="203.0.113.1"))

    response = post(path, data, REMOTE_ADDR="203.0.113.2")

    assert response.status_code != 429
    assert_throttled(post(path, data, REMOTE_ADDR="203.0.113.1"))


def test_another_address_is_not_throttled_for_register():
    for n in range(LIMIT):
        post(
            REGISTER,
            {"username": f"a{n}", "email": f"a{n}@example.com", "password": STRONG},
            REMOTE_ADDR="203.0.113.1",
        )

    data = {"username": "b0", "email": "b0@example.com", "password": STRONG}
    assert post(REGISTER, data, REMOTE_ADDR="203.0.113.2").status_code == 201


def test_without_trusted_proxies_x_forwarded_for_gives_no_fresh_bucket(settings, user, password):
    assert settings.TRUSTED_PROXY_COUNT == 0
    assert api_settings.NUM_PROXIES == 0
    for n in range(LIMIT):
        response = post(
            LOGIN,
            {"username": "nobody", "password": "wrong"},
            REMOTE_ADDR="198.51.100.9",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
        )
        assert response.status_code == 401

    response = post(
        LOGIN,
        {"username": user.username, "password": password},
        REMOTE_ADDR="198.51.100.9",
        HTTP_X_FORWARDED_FOR="10.9.9.9",
    )

    assert_throttled(response)


def test_with_one_trusted_proxy_the_last_forwarded_entry_is_the_client(proxies, user, password):
    proxies(1)
    proxy = "10.0.0.1"
    for _ in range(LIMIT):
        response = post(
            LOGIN,
            {"username": "nobody", "password": "wrong"},
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.50",
        )
        assert response.status_code == 401

    # Same client behind the proxy, whatever it puts left of the proxy's entry: still limited.
    spoofed = post(
        LOGIN,
        {"username": user.username, "password": password},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="8.8.8.8, 203.0.113.50",
    )
    assert_throttled(spoofed)
    # Another client through the same proxy: its own bucket.
    other = post(
        LOGIN,
        {"username": user.username, "password": password},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.51",
    )
    assert other.status_code == 200, other.content


def test_the_session_address_is_the_socket_peer_without_trusted_proxies(user, password):
    body = post(
        LOGIN,
        {"username": user.username, "password": password},
        REMOTE_ADDR="198.51.100.7",
        HTTP_X_FORWARDED_FOR="6.6.6.6",
    ).json()

    assert AuthSession.objects.get(id=body["session_id"]).ip == "198.51.100.7"
    login_event = AuditEvent.objects.get(kind=AuditEvent.Kind.LOGIN, user=user)
    assert login_event.ip == "198.51.100.7"


def test_the_session_address_honours_the_trusted_proxy_count(proxies, user, password):
    proxies(1)

    body = post(
        LOGIN,
        {"username": user.username, "password": password},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.77",
    ).json()

    assert AuthSession.objects.get(id=body["session_id"]).ip == "203.0.113.77"
    assert AuditEvent.objects.get(kind=AuditEvent.Kind.LOGIN, user=user).ip == "203.0.113.77"


def test_with_two_trusted_proxies_the_second_to_last_entry_is_the_client(proxies, user, password):
    proxies(2)

    body = post(
        LOGIN,
        {"username": user.username, "password": password},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.78, 10.0.0.2",
    ).json()

    assert AuthSession.objects.get(id=body["session_id"]).ip == "203.0.113.78"


def test_a_malformed_forwarded_address_is_not_stored(proxies, user, password):
    proxies(1)

    response = post(
        LOGIN,
        {"username": user.username, "password": password},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="not-an-address",
    )

    assert response.status_code == 200
    assert AuthSession.objects.get(id=response.json()["session_id"]).ip == "10.0.0.1"
