"""Every door that checks a password obeys the lockout (API.md, "Accounts and tokens" → Rules).

The Django admin's login form goes through `authenticate()`; it must count
failures and refuse locked accounts with the lockout of `/auth/login`, share
its per-address limit, and answer a locked account with its ordinary error.
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import authenticate
from django.test import Client
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import AuditEvent, LoginLockout
from accounts.tests.factories import UserFactory

ADMIN_LOGIN = "/admin/login/?next=/admin/"
API_LOGIN = "/api/v1/auth/login"
FORM_ERROR = "Please enter the correct username and password"

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(password):
    return UserFactory(password=password, roles=["user", "admin"], is_staff=True)


def admin_login(client: Client, username: str, password: str, **extra):
    return client.post(ADMIN_LOGIN, {"username": username, "password": password}, **extra)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def api_login(username: str, password: str, **extra):
    return APIClient().post(API_LOGIN, {"username": username, "password": password}, format="json", **extra)


def test_the_admin_form_lets_a_staff_member_in(staff, password):
    client = Client()
    response = admin_login(client, staff.username, password)
    assert response.status_code == 302
    assert logged_in(client)


def test_an_account_locked_by_api_logins_cannot_enter_the_admin_with_its_right_password(staff, password):
    for _ in range(django_settings.LOGIN_MAX_ATTEMPTS):
        assert api_login(staff.username, "wrong").status_code == 401
    assert api_login(staff.username, password).status_code == 429

    client = Client()
    response = admin_login(client, staff.username, password)

    # The admin's ordinary error, not a 500 and not a way in.
    assert response.status_code == 200
    assert FORM_ERROR in response.content.decode()
    assert not logged_in(client)
    # Failures during a lockout do not extend it, and the right password does not lift it.
    assert LoginLockout.objects.get(key=f"user:{staff.id}").failures == django_settings.LOGIN_MAX_ATTEMPTS


def test_admin_form_failures_count_toward_the_api_lockout(staff, password):
    client = Client()
    for _ in range(django_settings.LOGIN_MAX_ATTEMPTS):
        response = admin_login(client, staff.username, "wrong")
        assert response.status_code == 200
        assert FORM_ERROR in response.content.decode()

    response = api_login(staff.username, password)

    assert response.status_code == 429
    assert response.json()["code"] == "locked_out"
    assert int(response["Retry-After"]) > 0
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.LOGIN_FAILED, user=staff).count() == (
        django_settings.LOGIN_MAX_ATTEMPTS
    )


def test_a_success_in_the_admin_resets_the_count(staff, password):
    client = Client()
    for _ in range(django_settings.LOGIN_MAX_ATTEMPTS - 1):
        admin_login(client, staff.username, "wrong")
    assert admin_login(client, staff.username, password).status_code == 302
    assert not LoginLockout.objects.filter(key=f"user:{staff.id}").exists()


def test_an_unknown_name_in_the_admin_is_counted_like_in_the_api():
    client = Client()
    for _ in range(django_settings.LOGIN_MAX_ATTEMPTS):
        admin_login(client, "nobody-here", "wrong")
    assert api_login("nobody-here", "whatever").status_code == 429


def test_anything_calling_authenticate_is_refused_while_locked(staff, password):
    for _ in range(django_settings.LOGIN_MAX_ATTEMPTS):
        api_login(staff.username, "wrong")
    assert authenticate(username=staff.username, password=password) is None
    assert authenticate(username=staff.email, password=password) is None  # the email is the same account


def test_many_wrong_admin_logins_from_one_address_are_throttled(monkeypatch, password):
    monkeypatch.setattr(
        SimpleRateThrottle,
        "THROTTLE_RATES",
        {"login_ip": "5/min", "register_ip": "5/min", "password_reset_ip": "5/min"},
    )
    # Spraying many accounts: no single account reaches the lockout.
    sprayed = [UserFactory(password=password, roles=["user", "admin"], is_staff=True) for _ in range(7)]
    client = Client(REMOTE_ADDR="203.0.113.9")
    for target in sprayed[:5]:
        assert FORM_ERROR in admin_login(client, target.username, "wrong").content.decode()

    # Beyond the rate even the right password of another account is refused...
    response = admin_login(client, sprayed[5].username, password)
    assert response.status_code == 200
    assert FORM_ERROR in response.content.decode()
    assert not logged_in(client)
    # ...without counting against that account (the throttle stopped it first)...
    assert not LoginLockout.objects.filter(key=f"user:{sprayed[5].id}").exists()
    # ...and the API's login shares the same per-address counter.
    assert api_login(sprayed[6].username, password, REMOTE_ADDR="203.0.113.9").status_code == 429
    # Another address is not affected.
    other = Client(REMOTE_ADDR="203.0.113.10")
    assert admin_login(other, sprayed[5].username, password).status_code == 302
