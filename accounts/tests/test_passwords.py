"""Password change and reset by emailed link (API.md, "Accounts and tokens")."""

from __future__ import annotations

import base64
import re
import uuid
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuthSession, LoginLockout, User
from accounts.tests.factories import UserFactory
from accounts.tests.support import bearer

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/users/me"
CHANGE = "/api/v1/auth/password/change"
RESET = "/api/v1/auth/password/reset"
CONFIRM = "/api/v1/auth/password/reset/confirm"
NEW = "a brand new pass phrase 42"
RESET_URL = "https://app.example/reset?uid={uid}&token={token}"
LINK = re.compile(r"https://app\.example/reset\?[^\s\"'<>]+")

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


@pytest.fixture(autouse=True)
def _reset_url(settings):
    settings.PASSWORD_RESET_URL = RESET_URL
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def post(path: str, data: dict, **extra):
    return APIClient().post(path, data, format="json", **extra)


def try_login(identifier: str, password: str):
    return post(LOGIN, {"username": identifier, "password": password})


def request_reset(email: str):
    """Ask for a reset; the per-request fixture runs the commit hook that sends the mail."""
    return post(RESET, {"email": email})


def html_link(message) -> str:
    """The one link of the HTML alternative, as a browser reads it (entities decoded)."""
    assert len(message.alternatives) == 1
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    found = [unescape(href) for href in re.findall(r'href="([^"]+)"', html)]
    assert len(found) == 1, html
    return found[0]


def mailed_link(message) -> tuple[str, str, str]:
    """The reset link of the mail (from its HTML part), and its uid and token."""
    link = html_link(message)
    query = parse_qs(urlsplit(link).query)
    assert set(query) == {"uid", "token"}, link
    return link, query["uid"][0], query["token"][0]


# --- change --------------------------------------------------------------------------


def test_change_with_a_wrong_old_password_is_a_field_error(auth_client, user, password):
    response = auth_client.post(CHANGE, {"old_password": "not it", "new_password": NEW}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["old_password"]
    assert isinstance(body["old_password"], list)
    assert body["old_password"]
    assert try_login(user.username, password).status_code == 200
    assert try_login(user.username, NEW).status_code == 401


def test_change_to_a_weak_password_is_a_new_password_field_error(auth_client, user, password):
    for weak in ("short", "password123", "12345678901234", user.username + "1"):
        response = auth_client.post(CHANGE, {"old_password": password, "new_password": weak}, format="json")

        assert response.status_code == 400, weak
        body = response.json()
        # The error names the field the client sent: `new_password`.
        assert list(body) == ["new_password"], body
        assert isinstance(body["new_password"], list)
        assert body["new_password"]
    assert try_login(user.username, password).status_code == 200
    assert auth_client.get(ME).status_code == 200


def test_change_needs_both_fields_and_a_token(auth_client):
    response = auth_client.post(CHANGE, {}, format="json")
    assert response.status_code == 400
    assert {"old_password", "new_password"} <= set(response.json())

    assert (
        APIClient().post(CHANGE, {"old_password": "a", "new_password": NEW}, format="json").status_code == 401
    )


def test_change_keeps_this_session_and_ends_the_others(auth_client, user, password, login):
    other = login(user)
    third = login(user)
    assert bearer(other["access"]).get(ME).status_code == 200  # warm: the cache says "live"

    response = auth_client.post(CHANGE, {"old_password": password, "new_password": NEW}, format="json")

    assert response.status_code == 204
    assert response.content == b""
    assert auth_client.get(ME).status_code == 200
    for tokens in (other, third):
        assert bearer(tokens["access"]).get(ME).status_code == 401
        assert post(REFRESH, {"refresh": tokens["refresh"]}).status_code == 401
    assert post(REFRESH, {"refresh": auth_client.tokens["refresh"]}).status_code == 200
    active = AuthSession.objects.active().filter(user=user).values_list("id", flat=True)
    assert [str(sid) for sid in active] == [auth_client.tokens["session_id"]]


def test_after_a_change_only_the_new_password_logs_in(auth_client, user, password):
    assert (
        auth_client.post(CHANGE, {"old_password": password, "new_password": NEW}, format="json").status_code
        == 204
    )

    assert try_login(user.username, password).status_code == 401
    assert try_login(user.username, NEW).status_code == 200
    assert try_login(user.email, NEW).status_code == 200


# --- reset request --------------------------------------------------------------------


def test_reset_answers_the_same_for_known_and_unknown_addresses(user):
    known = request_reset(user.email)
    unknown = request_reset("nobody@example.com")
    known_other_case = request_reset(user.email.upper())

    assert known.status_code == unknown.status_code == known_other_case.status_code == 202
    assert known.content == unknown.content == known_other_case.content
    assert set(known.json()) == {"detail"}
    assert set(known.headers) == set(unknown.headers)


def test_reset_for_a_known_address_mails_one_link(user):
    response = request_reset(user.email)

    assert response.status_code == 202
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [user.email]
    assert message.subject
    link, uid, token = mailed_link(message)
    assert uid
    assert token
    assert link == RESET_URL.format(uid=uid, token=token)
    # The plain-text part carries it too (its exact form: the next test).
    assert user.username in message.body
    assert uid in message.body
    assert token in message.body
    assert "https://app.example/reset?uid=" in message.body


def test_reset_mail_text_body_carries_the_link_verbatim(user):
    """The plain-text part is read as is: the link must not be HTML-escaped (`&amp;`)."""
    request_reset(user.email)

    message = mail.outbox[0]
    link, _, _ = mailed_link(message)
    assert LINK.findall(message.body) == [link], message.body
    assert "&amp;" not in message.body


def test_reset_for_an_unknown_address_sends_nothing(user):
    response = request_reset("nobody@example.com")

    assert response.status_code == 202
    assert mail.outbox == []


@pytest.mark.parametrize("state", ["inactive", "deleted"])
def test_reset_for_an_inactive_or_deleted_account_sends_nothing(password, state):
    extra = (
        {"is_active": False} if state == "inactive" else {"is_active": False, "deleted_at": timezone.now()}
    )
    target = UserFactory(password=password, **extra)
    known = UserFactory(password=password)

    response = request_reset(target.email)
    reference = request_reset("nobody@example.com")

    assert response.status_code == 202
    assert response.content == reference.content
    assert mail.outbox == []
    assert known  # a live account exists, so "no mail" is the rule, not an empty database


def test_reset_request_validates_the_address():
    response = post(RESET, {"email": "not an email"})

    assert response.status_code == 400
    assert "email" in response.json()


# --- reset confirm ---------------------------------------------------------------------


def new_reset_link(user) -> tuple[str, str, str]:
    """Ask for a reset and read the mailed link.

    Django's reset token covers `last_login` (to the second): a login after
    the link was mailed may spend it, so tests log in before asking.
    """
    mail.outbox.clear()
    request_reset(user.email)
    assert len(mail.outbox) == 1
    return mailed_link(mail.outbox[0])


@pytest.fixture
def reset_link(user):
    return new_reset_link(user)


def test_confirm_sets_the_password_and_ends_every_session(user, password, auth_client, login):
    other = login(user)
    assert auth_client.get(ME).status_code == 200  # warm cache
    _, uid, token = new_reset_link(user)

    response = post(CONFIRM, {"uid": uid, "token": token, "new_password": NEW})

    assert response.status_code == 204
    assert response.content == b""
    for tokens in (auth_client.tokens, other):
        assert bearer(tokens["access"]).get(ME).status_code == 401
        assert post(REFRESH, {"refresh": tokens["refresh"]}).status_code == 401
    assert not AuthSession.objects.active().filter(user=user).exists()
    assert login_status(user.username, password) == 401
    assert login_status(user.username, NEW) == 200


def login_status(identifier: str, password: str) -> int:
    return try_login(identifier, password).status_code


def test_a_reset_link_works_once(user, reset_link):
    _, uid, token = reset_link
    assert post(CONFIRM, {"uid": uid, "token": token, "new_password": NEW}).status_code == 204

    again = post(CONFIRM, {"uid": uid, "token": token, "new_password": "yet another pass phrase 7"})

    assert again.status_code == 400
    assert again.json() == {"detail": again.json()["detail"], "code": "invalid_token"}
    assert again.json()["detail"]
    assert login_status(user.username, NEW) == 200
    assert login_status(user.username, "yet another pass phrase 7") == 401


@pytest.mark.parametrize(
    ("uid", "token"),
    [
        ("garbage", "garbage"),
        ("", "x"),
        ("MTIz", "abc-123"),  # base64 of "123": not a UUID
        ("!!!", "???"),
        ("__REAL_UID__", "c0ffee-0123456789abcdef0123456789abcdef"),
        ("__UNKNOWN_UUID__", "__REAL_TOKEN__"),
    ],
)
def test_a_bad_uid_or_token_is_invalid_token(user, password, reset_link, uid, token):
    _, real_uid, real_token = reset_link
    uid = {
        "__REAL_UID__": real_uid,
        "__UNKNOWN_UUID__": base64.urlsafe_b64encode(str(uuid.uuid4()).encode()).decode().rstrip("="),
    }.get(uid, uid)
    token = {"__REAL_TOKEN__": real_token}.get(token, token)

    response = post(CONFIRM, {"uid": uid, "token": token, "new_password": NEW})

    if uid == "":
        assert response.status_code == 400
        assert "uid" in response.json()
    else:
        assert response.status_code == 400, response.content
        body = response.json()
        assert set(body) == {"detail", "code"}
        assert body["code"] == "invalid_token"
    assert login_status(user.username, password) == 200


def test_a_link_for_one_user_does_not_reset_another(user, password, reset_link):
    other = UserFactory(password=password)
    other_uid = base64.urlsafe_b64encode(str(other.id).encode()).decode().rstrip("=")
    _, _, token = reset_link

    response = post(CONFIRM, {"uid": other_uid, "token": token, "new_password": NEW})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"
    assert login_status(other.username, password) == 200


def test_confirm_with_a_weak_password_is_a_new_password_field_error(user, password, reset_link):
    _, uid, token = reset_link

    response = post(CONFIRM, {"uid": uid, "token": token, "new_password": "short"})

    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["new_password"], body
    assert body["new_password"]
    assert User.objects.get(id=user.id).check_password(password)
    # The link was not spent by the refused attempt.
    assert post(CONFIRM, {"uid": uid, "token": token, "new_password": NEW}).status_code == 204


def test_a_link_from_before_a_password_change_is_dead(user, password, auth_client, reset_link):
    _, uid, token = reset_link
    assert (
        auth_client.post(CHANGE, {"old_password": password, "new_password": NEW}, format="json").status_code
        == 204
    )

    response = post(CONFIRM, {"uid": uid, "token": token, "new_password": "yet another pass phrase 7"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"


def test_a_reset_lifts_a_lockout(user, password, settings, reset_link):
    settings.LOGIN_MAX_ATTEMPTS = 3
    for _ in range(3):
        assert login_status(user.username, "guess") == 401
    assert login_status(user.username, password) == 429
    _, uid, token = reset_link

    assert post(CONFIRM, {"uid": uid, "token": token, "new_password": NEW}).status_code == 204

    assert not LoginLockout.objects.filter(key=f"user:{user.id}").exists()
    assert login_status(user.username, NEW) == 200


def test_a_deactivated_user_cannot_use_an_earlier_link(user, reset_link):
    _, uid, token = reset_link
    User.objects.filter(id=user.id).update(is_active=False)

    response = post(CONFIRM, {"uid": uid, "token": token, "new_password": NEW})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"


# --- the hash is made outside the change's transaction ----------------------------------


@pytest.fixture
def hash_depths(monkeypatch):
    """How many atomic blocks were open at each hash (the test's own included), checks of the old one too."""
    from django.contrib.auth.hashers import MD5PasswordHasher  # the suite's hasher (conftest)
    from django.db import connection

    depths: list[int] = []
    real = MD5PasswordHasher.encode

    def spy(self, password, salt):
        depths.append(len(connection.atomic_blocks))
        return real(self, password, salt)

    monkeypatch.setattr(MD5PasswordHasher, "encode", spy)
    return depths


def _own_depth() -> int:
    from django.db import connection

    return len(connection.atomic_blocks)


def test_a_changed_password_is_hashed_before_the_row_is_locked(auth_client, password, hash_depths):
    """bcrypt's ~200 ms must not hold the user's row lock, nor SQLite's one write lock."""
    response = auth_client.post(CHANGE, {"old_password": password, "new_password": NEW}, format="json")

    assert response.status_code == 204, response.content
    assert hash_depths == [_own_depth()] * 2  # the old password checked, the new one hashed


def test_a_reset_password_is_hashed_before_the_row_is_locked(user, reset_link, hash_depths):
    _, uid, token = reset_link

    assert post(CONFIRM, {"uid": uid, "token": token, "new_password": NEW}).status_code == 204
    assert hash_depths == [_own_depth()]
    assert login_status(user.username, NEW) == 200


def test_an_administrators_password_is_hashed_before_the_row_is_locked(user, hash_depths):
    from accounts import services

    services.password_set(user_id=user.id, password=NEW)

    assert hash_depths == [_own_depth()]
    user.refresh_from_db()
    assert user.check_password(NEW)
