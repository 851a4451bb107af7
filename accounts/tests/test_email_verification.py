"""Verified email addresses (API.md → Accounts "Email verification", Users `PATCH /users/me`, issue 24).

Every link here is read from the mailbox as a client reads the mail (`verification_link`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from accounts.models import AuditEvent, AuthSession, User
from accounts.services import AuditKind, session_open
from accounts.tests.factories import UserFactory
from accounts.tests.support import (
    CACHE_DOWN,
    PASSWORD,
    VERIFY_SUBJECT,
    bearer,
    bearer_for,
    verification_link,
    verification_link_use,
)
from notifications.models import Notification, OutboxEvent
from testing.races import run_at_once

API = "/api/v1"
ME = f"{API}/users/me"
LOGIN = f"{API}/auth/login"
REGISTER = f"{API}/auth/register"
VERIFY = f"{API}/auth/email/verify"
RESEND = f"{API}/auth/email/verify/resend"
SET_PASSWORD = f"{API}/auth/password/set"
STRONG = "a brand new pass phrase 9"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


def register(api_client: Any, email: str = "new.person@example.com", username: str = "newperson") -> Any:
    body = {"username": username, "email": email, "password": STRONG}
    response = api_client.post(REGISTER, body, format="json")
    assert response.status_code == 201, response.content
    return response


def login(identifier: str, password: str = STRONG) -> Any:
    from rest_framework.test import APIClient

    return APIClient().post(LOGIN, {"username": identifier, "password": password}, format="json")


# --- the link ------------------------------------------------------------------------------------


def test_registration_mails_a_link_that_verifies_the_address_once(api_client):
    body = register(api_client).json()
    assert (body["email_verified"], body["email_pending"]) == (False, None)
    (sent,) = [m for m in mail.outbox if m.subject == VERIFY_SUBJECT]
    assert sent.to == ["new.person@example.com"]
    assert sent.alternatives  # text and HTML

    assert verification_link_use("new.person@example.com").status_code == 204

    user = User.objects.get(username="newperson")
    assert user.email_verified
    tokens = login("newperson").json()
    assert bearer(tokens["access"]).get(ME).json()["email_verified"] is True
    (event,) = OutboxEvent.objects.filter(key="user_updated", payload__user_id=str(user.id))
    assert event.payload["email_verified"] is True
    again = api_client.post(VERIFY, verification_link("new.person@example.com"), format="json")
    assert (again.status_code, again.json()["code"]) == (400, "invalid_token")


def test_new_user_says_whether_the_address_is_verified(api_client):
    register(api_client)
    (event,) = OutboxEvent.objects.filter(key="new_user")
    assert event.payload["email_verified"] is False


@pytest.mark.parametrize(
    "bad",
    [
        {"uid": "not-base64!", "token": "x"},
        {"uid": "", "token": ""},
        {"uid": "MTIz", "token": "a" * 128},
        {"uid": "x" * 65, "token": "t"},
    ],
)
def test_a_forged_link_is_a_clear_400(api_client, bad):
    response = api_client.post(VERIFY, bad, format="json")
    assert response.status_code == 400
    assert "code" in response.json() or set(response.json()) <= {"uid", "token", "detail", "code"}


def test_the_link_stops_working_after_a_password_change(api_client):
    register(api_client)
    link = verification_link("new.person@example.com")
    client = bearer(login("newperson").json()["access"])
    changed = client.post(
        f"{API}/auth/password/change",
        {"old_password": STRONG, "new_password": "another pass phrase 8"},
        format="json",
    )
    assert changed.status_code == 204

    response = api_client.post(VERIFY, link, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_token")


def test_a_completed_password_reset_verifies_the_address_it_was_mailed_to(api_client):
    import re
    import urllib.parse

    register(api_client)
    assert (
        api_client.post(
            f"{API}/auth/password/reset", {"email": "new.person@example.com"}, format="json"
        ).status_code
        == 202
    )
    (reset,) = [m for m in mail.outbox if m.subject == "Reset your password"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(re.search(r"\S*uid=\S+", reset.body).group()).query)
    confirm = {"uid": query["uid"][0], "token": query["token"][0], "new_password": "a reset pass phrase 4"}

    assert api_client.post(f"{API}/auth/password/reset/confirm", confirm, format="json").status_code == 204
    assert User.objects.get(username="newperson").email_verified


def test_an_administrators_create_mails_a_link(admin_user):
    client = bearer_for(admin_user)
    body = {"username": "made", "email": "made@example.com", "password": STRONG}
    assert client.post(f"{API}/users", body, format="json").status_code == 201
    assert verification_link_use("made@example.com").status_code == 204
    assert User.objects.get(username="made").email_verified


# --- mandatory verification ---------------------------------------------------------------------


@pytest.fixture
def mandatory(settings):
    settings.EMAIL_VERIFICATION = "mandatory"


def test_mandatory_a_right_password_for_an_unverified_account_opens_no_session(api_client, mandatory):
    register(api_client)
    response = login("newperson")

    assert response.status_code == 403
    assert response.json()["code"] == "email_unverified"
    assert not AuthSession.objects.filter(user__username="newperson").exists()

    verification_link_use("new.person@example.com")
    assert login("newperson").status_code == 200


def test_mandatory_wrong_passwords_answer_the_same_401_whoever_the_account(api_client, mandatory):
    register(api_client)  # unverified
    verified = UserFactory(password=PASSWORD, email_verified=True)

    answers = [
        login("newperson", "a wrong pass phrase"),
        login(verified.username, "a wrong pass phrase"),
        login("nobody-by-this-name", "a wrong pass phrase"),
    ]
    assert {r.status_code for r in answers} == {401}
    assert len({r.content for r in answers}) == 1


def test_mandatory_holds_at_restore(api_client, mandatory):
    register(api_client)
    user = User.objects.get(username="newperson")
    User.objects.filter(id=user.id).update(deleted_at=timezone.now(), deleted_by_owner=True, is_active=True)

    response = api_client.post(
        f"{API}/auth/restore", {"username": "newperson", "password": STRONG}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (403, "email_unverified")
    assert User.objects.get(id=user.id).deleted_at is not None


def test_mandatory_holds_at_the_django_admin_login_with_its_usual_error(client, mandatory):
    admin = UserFactory(password=PASSWORD, roles=["user", "admin"], email_verified=False)
    response = client.post("/admin/login/?next=/admin/", {"username": admin.username, "password": PASSWORD})
    assert response.status_code == 200  # the form again, with Django's usual error
    assert b"Please enter the correct" in response.content
    assert "_auth_user_id" not in client.session

    User.objects.filter(id=admin.id).update(email_verified=True)
    response = client.post("/admin/login/?next=/admin/", {"username": admin.username, "password": PASSWORD})
    assert response.status_code == 302


def test_mandatory_lets_an_account_without_an_address_in(mandatory):
    user = UserFactory(password=PASSWORD, email="")
    assert login(user.username, PASSWORD).status_code == 200


def test_optional_the_default_only_adds_the_flag(api_client):
    register(api_client)
    assert login("newperson").status_code == 200


# --- an email change waits for the new address ---------------------------------------------------


def test_a_second_change_replaces_the_pending_one(user):
    client = bearer_for(user)
    first = client.patch(ME, {"email": "first@example.com", "current_password": PASSWORD}, format="json")
    assert first.json()["email_pending"] == "first@example.com"
    first_link = verification_link("first@example.com")
    second = client.patch(ME, {"email": "second@example.com", "current_password": PASSWORD}, format="json")
    assert second.json()["email_pending"] == "second@example.com"

    stale = client.post(VERIFY, first_link, format="json")
    assert (stale.status_code, stale.json()["code"]) == (400, "invalid_token")
    assert verification_link_use("second@example.com").status_code == 204
    user.refresh_from_db()
    assert (user.email, user.email_pending, user.email_verified) == ("second@example.com", "", True)


def test_an_address_taken_meanwhile_is_refused_when_the_link_is_used(user):
    client = bearer_for(user)
    client.patch(ME, {"email": "wanted@example.com", "current_password": PASSWORD}, format="json")
    UserFactory(email="wanted@example.com")  # another account takes it first

    response = client.post(VERIFY, verification_link("wanted@example.com"), format="json")

    assert (response.status_code, response.json()["code"]) == (409, "email_taken")
    user.refresh_from_db()
    assert (user.email_pending, user.email) == ("wanted@example.com", user.email)
    assert not OutboxEvent.objects.filter(key="user_updated").exists()


def test_an_address_another_account_holds_is_refused_at_once(user):
    other = UserFactory()
    response = bearer_for(user).patch(ME, {"email": other.email, "current_password": PASSWORD}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()


def test_going_back_to_the_current_address_drops_the_pending_one(user):
    client = bearer_for(user)
    client.patch(ME, {"email": "elsewhere@example.com", "current_password": PASSWORD}, format="json")
    response = client.patch(ME, {"email": user.email.upper()}, format="json")
    assert (response.status_code, response.json()["email_pending"]) == (200, None)


def test_an_administrators_change_applies_at_once_unverified_and_tells_the_old_address(admin_user, user):
    User.objects.filter(id=user.id).update(email_verified=True)
    old = user.email
    response = bearer_for(admin_user).patch(
        f"{API}/users/{user.id}", {"email": "moved@example.com"}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["email"], response.json()["email_verified"]) == ("moved@example.com", False)
    told = [m for m in mail.outbox if m.to == [old]]
    assert [m.subject for m in told] == ["The email address of your account was changed"]
    assert verification_link("moved@example.com")


# --- resend --------------------------------------------------------------------------------------


def test_resend_mails_a_new_link_and_is_throttled_per_user(api_client, settings):
    settings.THROTTLE_EMAIL_VERIFY_USER = "2/hour"
    register(api_client)
    client = bearer(login("newperson").json()["access"])

    assert client.post(RESEND).status_code == 202
    assert client.post(RESEND).status_code == 202
    third = client.post(RESEND)
    assert third.status_code == 429
    assert third.has_header("Retry-After")
    assert len([m for m in mail.outbox if m.subject == VERIFY_SUBJECT]) == 3  # registration's, and two
    assert verification_link_use("new.person@example.com").status_code == 204


def test_resend_with_nothing_to_verify_is_a_clear_400(user):
    User.objects.filter(id=user.id).update(email_verified=True)
    response = bearer_for(user).post(RESEND)
    assert (response.status_code, response.json()["code"]) == (400, "nothing_to_verify")


def test_resend_refuses_while_its_limit_cannot_be_counted(user):
    client = bearer_for(user)
    with override_settings(CACHES=CACHE_DOWN):
        response = client.post(RESEND)
    assert response.status_code == 503
    assert response.has_header("Retry-After")


# --- a first password ----------------------------------------------------------------------------


def social_only_user() -> User:
    user = UserFactory()
    user.set_unusable_password()
    user.save()
    return user


def session_of(user: User, *, age_seconds: int = 0) -> Any:
    pair = session_open(user=user, ip=None, user_agent="tests", amr=("yandex",))
    if age_seconds:
        AuthSession.objects.filter(id=pair.session_id).update(
            created_at=timezone.now() - timedelta(seconds=age_seconds)
        )
    return bearer(pair.access), pair


def test_a_social_account_sets_its_first_password_from_a_fresh_session(settings):
    settings.REAUTH_MAX_AGE = 300
    user = social_only_user()
    client, _ = session_of(user)
    _, other = session_of(user)

    assert client.post(SET_PASSWORD, {"new_password": STRONG}, format="json").status_code == 204

    assert login(user.username, STRONG).status_code == 200
    assert AuthSession.objects.get(id=other.session_id).revoked_at is None  # no other session ends
    (audited,) = AuditEvent.objects.filter(user=user, kind=AuditKind.PASSWORD_CHANGED)
    assert audited.detail["first_password"] is True
    assert Notification.objects.filter(user=user, data__event="password_first_set").exists()


def test_a_first_password_needs_a_fresh_session(settings):
    settings.REAUTH_MAX_AGE = 300
    client, _ = session_of(social_only_user(), age_seconds=301)
    response = client.post(SET_PASSWORD, {"new_password": STRONG}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "reauth_required")


def test_an_account_with_a_password_cannot_set_a_first_one(user):
    response = bearer_for(user).post(SET_PASSWORD, {"new_password": STRONG}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "password_already_set")


def test_a_first_password_is_checked_like_any_other():
    client, _ = session_of(social_only_user())
    response = client.post(SET_PASSWORD, {"new_password": "123"}, format="json")
    assert response.status_code == 400
    assert "new_password" in response.json()


# --- the admin, the export, bulk import ----------------------------------------------------------


def test_the_admin_filters_by_verification_and_resends_links(
    client, root, django_capture_on_commit_callbacks
):
    unverified = UserFactory(email="unverified@example.com")
    verified = UserFactory(email_verified=True)
    client.force_login(root)

    listed = client.get("/admin/accounts/user/?email_verified__exact=0")
    assert unverified.username in listed.content.decode()
    assert verified.username not in listed.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/accounts/user/",
            {"action": "resend_verification", "_selected_action": [unverified.pk, verified.pk]},
            follow=True,
        )
    assert response.status_code == 200
    assert verification_link("unverified@example.com")
    assert not [m for m in mail.outbox if m.to == [verified.email] and m.subject == VERIFY_SUBJECT]


def test_the_export_carries_the_verification_state(user):
    body = bearer_for(user).get(f"{ME}/export").json()
    assert body["profile"]["email_verified"] is False
    assert body["profile"]["email_pending"] is None


# --- two accounts racing for one address (PostgreSQL) --------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: two writers at once; SQLite's in-memory test database takes one",
)
def test_two_accounts_using_their_links_for_one_address_at_once_one_wins():
    from accounts.services import email_change_request, email_verify

    for round_ in range(5):
        wanted = f"contested{round_}@example.com"
        first, second = UserFactory(password=PASSWORD), UserFactory(password=PASSWORD)
        for user in (first, second):
            email_change_request(user=user, email=wanted)
        links = [verification_link_for(User.objects.get(id=user.id)) for user in (first, second)]

        results = run_at_once([lambda link=link: email_verify(**link) for link in links])

        won = [r for r in results if isinstance(r, User)]
        lost = [r for r in results if isinstance(r, Exception)]
        assert len(won) == 1, results
        assert [getattr(exc, "code", None) for exc in lost] == ["email_taken"], lost
        assert User.objects.filter(email=wanted).count() == 1
        loser = second if won[0].id == first.id else first
        loser.refresh_from_db()
        assert loser.email_pending == wanted  # still waiting, nothing half-written


def verification_link_for(user: User) -> dict[str, str]:
    """The `{uid, token}` a verification mail to `user` would carry now (made as the service makes it)."""
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from accounts.services.email_verification import email_verification_tokens

    return {
        "uid": urlsafe_base64_encode(force_bytes(str(user.id))),
        "token": email_verification_tokens.make_token(user),
    }


def test_mandatory_lets_a_yandex_account_in(mandatory, settings):
    import responses

    from accounts.tests.social_support import YANDEX, YANDEX_KEY, YANDEX_SECRET, mock_user_info

    settings.SOCIAL_AUTH_YANDEX_OAUTH2_KEY = YANDEX_KEY
    settings.SOCIAL_AUTH_YANDEX_OAUTH2_SECRET = YANDEX_SECRET
    with responses.RequestsMock(assert_all_requests_are_fired=False) as yandex:
        mock_user_info(yandex)
        from rest_framework.test import APIClient

        response = APIClient().post(YANDEX, {"access_token": "a-yandex-token"}, format="json")
    assert response.status_code == 200, response.content
    assert not [m for m in mail.outbox if m.subject == VERIFY_SUBJECT]
