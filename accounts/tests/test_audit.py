"""The audit log of security events: who, from where, what; never a secret.

Each API call below comes from a known address and user agent, and must leave
exactly the audit row it implies, carrying both.
"""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import AuditEvent, User
from accounts.services import AuditKind
from accounts.tests.factories import UserFactory
from accounts.tests.support import bearer, login_tokens

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
SESSIONS = "/api/v1/auth/sessions"
CHANGE = "/api/v1/auth/password/change"
RESET = "/api/v1/auth/password/reset"
CONFIRM = "/api/v1/auth/password/reset/confirm"
RESTORE = "/api/v1/auth/restore"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/users/me"
USERS = "/api/v1/users"
NEW = "a brand new pass phrase 42"
IP = "198.51.100.23"
AGENT = "audit-probe/1.0 (tests)"
ADMIN_IP = "203.0.113.9"
ADMIN_AGENT = "admin-console/3.1"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


def client_from(ip: str = IP, agent: str = AGENT, access: str | None = None) -> APIClient:
    if access:
        return bearer(access, REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)
    return APIClient(REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)


def login_from(user, password: str, ip: str = IP, agent: str = AGENT) -> dict:
    # An administrator passes the second factor too (from the same address and agent).
    return login_tokens(user, password, REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)


def the_event(kind: str, user=None, *, ip: str = IP, agent: str = AGENT) -> AuditEvent:
    """The one row of `kind` (for `user`), with the request's address and agent."""
    rows = AuditEvent.objects.filter(kind=kind)
    if user is not None:
        rows = rows.filter(user_id=user.id)
    found = list(rows)
    assert len(found) == 1, [(e.kind, e.user_id, e.detail) for e in AuditEvent.objects.all()]
    event = found[0]
    assert event.ip == ip
    assert event.user_agent == agent
    return event


def assert_no_secret(*secrets: str) -> None:
    """No audit row anywhere holds any of `secrets` (passwords, tokens)."""
    rows = list(AuditEvent.objects.all())
    assert rows
    for event in rows:
        text = f"{event.detail!s} {event.user_agent}"
        for secret in secrets:
            if secret:
                assert secret not in text, (event.kind, event.detail)


def test_login_success(user, password):
    tokens = login_from(user, password)

    event = the_event(AuditKind.LOGIN, user)
    assert event.detail.get("session_id") == tokens["session_id"]
    assert event.actor_id is None
    assert_no_secret(password, tokens["access"], tokens["refresh"])


def test_login_failure_of_a_known_and_an_unknown_name(user, password):
    wrong = "my wrong guess 123"
    assert (
        client_from().post(LOGIN, {"username": user.username, "password": wrong}, format="json").status_code
        == 401
    )
    assert (
        client_from().post(LOGIN, {"username": "ghost", "password": wrong}, format="json").status_code == 401
    )

    the_event(AuditKind.LOGIN_FAILED, user)
    unknown = [e for e in AuditEvent.objects.filter(kind=AuditKind.LOGIN_FAILED) if e.user_id is None]
    assert len(unknown) == 1
    assert (unknown[0].ip, unknown[0].user_agent) == (IP, AGENT)
    assert_no_secret(wrong, password)


def test_login_failure_of_an_inactive_account(password):
    inactive = UserFactory(password=password, is_active=False)

    assert (
        client_from()
        .post(LOGIN, {"username": inactive.username, "password": password}, format="json")
        .status_code
        == 401
    )

    event = the_event(AuditKind.LOGIN_FAILED, inactive)
    assert event.detail == {"reason": "inactive"}


def test_lockout(user, password, settings):
    settings.LOGIN_MAX_ATTEMPTS = 2
    for _ in range(2):
        client_from().post(LOGIN, {"username": user.username, "password": "guess one"}, format="json")
    assert (
        client_from()
        .post(LOGIN, {"username": user.username, "password": password}, format="json")
        .status_code
        == 429
    )

    event = the_event(AuditKind.LOCKOUT, user)
    assert event.detail == {"failures": 2}
    assert AuditEvent.objects.filter(kind=AuditKind.LOGIN_FAILED, user=user).count() == 2
    assert not AuditEvent.objects.filter(kind=AuditKind.LOGIN).exists()
    assert_no_secret(password, "guess one")


def test_logout(user, password):
    tokens = login_from(user, password)

    assert client_from(access=tokens["access"]).post(LOGOUT).status_code == 204

    event = the_event(AuditKind.LOGOUT, user)
    assert event.detail["session_id"] == tokens["session_id"]
    assert_no_secret(tokens["access"], tokens["refresh"], password)


def test_session_revoke(user, password):
    current = login_from(user, password)
    other = login_from(user, password, ip="192.0.2.1", agent="other-device")

    response = client_from(access=current["access"]).delete(f"{SESSIONS}/{other['session_id']}")

    assert response.status_code == 204
    event = the_event(AuditKind.SESSION_REVOKED, user)
    assert event.detail["session_id"] == other["session_id"]
    assert_no_secret(current["access"], current["refresh"], other["access"], other["refresh"])


def test_refresh_token_reuse(user, password):
    tokens = login_from(user, password)
    assert client_from().post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 200

    assert client_from().post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 401

    event = the_event(AuditKind.TOKEN_REUSE, user)
    assert event.detail["session_id"] == tokens["session_id"]
    assert_no_secret(tokens["refresh"], tokens["access"])


def test_password_change(user, password):
    tokens = login_from(user, password)
    login_from(user, password)  # another session, ended by the change

    response = client_from(access=tokens["access"]).post(
        CHANGE, {"old_password": password, "new_password": NEW}, format="json"
    )

    assert response.status_code == 204
    the_event(AuditKind.PASSWORD_CHANGED, user)
    revoked = the_event(AuditKind.SESSION_REVOKED, user)
    assert revoked.detail == {"count": 1, "reason": "password_changed"}
    assert_no_secret(password, NEW, tokens["access"], tokens["refresh"])


def test_password_reset(user, password, settings):
    settings.PASSWORD_RESET_URL = "https://app.example/reset?uid={uid}&token={token}"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert client_from().post(RESET, {"email": user.email}, format="json").status_code == 202
    ((html, _),) = mail.outbox[0].alternatives
    link = unescape(re.search(r'href="([^"]+)"', html).group(1))
    uid, token = re.search(r"uid=([^&]+)&token=(.+)$", link).groups()

    response = client_from().post(CONFIRM, {"uid": uid, "token": token, "new_password": NEW}, format="json")

    assert response.status_code == 204
    the_event(AuditKind.PASSWORD_RESET_REQUESTED, user)
    the_event(AuditKind.PASSWORD_RESET, user)
    assert_no_secret(token, uid, NEW, link)


def test_deletion_and_restore(user, password):
    tokens = login_from(user, password)

    assert (
        client_from(access=tokens["access"]).delete(ME, {"password": password}, format="json").status_code
        == 204
    )
    deleted = the_event(AuditKind.DELETED, user)
    assert deleted.actor_id is None

    response = client_from(ip="192.0.2.77", agent="restorer/1").post(
        RESTORE, {"username": user.username, "password": password}, format="json"
    )

    assert response.status_code == 200
    restored = the_event(AuditKind.RESTORED, user, ip="192.0.2.77", agent="restorer/1")
    assert restored.actor_id is None
    assert_no_secret(password, tokens["access"], tokens["refresh"])


def test_admin_deletion_and_restore_name_the_admin(user, admin_user, password):
    admin = client_from(
        ADMIN_IP, ADMIN_AGENT, login_from(admin_user, password, ADMIN_IP, ADMIN_AGENT)["access"]
    )

    assert admin.delete(f"{USERS}/{user.id}").status_code == 204
    assert admin.post(f"{USERS}/{user.id}/restore").status_code == 200

    deleted = the_event(AuditKind.DELETED, user, ip=ADMIN_IP, agent=ADMIN_AGENT)
    restored = the_event(AuditKind.RESTORED, user, ip=ADMIN_IP, agent=ADMIN_AGENT)
    assert deleted.actor_id == restored.actor_id == admin_user.id


def test_role_change(user, admin_user, password):
    admin = client_from(
        ADMIN_IP, ADMIN_AGENT, login_from(admin_user, password, ADMIN_IP, ADMIN_AGENT)["access"]
    )

    response = admin.patch(f"{USERS}/{user.id}", {"roles": ["user", "moderator"]}, format="json")

    assert response.status_code == 200
    event = the_event(AuditKind.ROLE_CHANGED, user, ip=ADMIN_IP, agent=ADMIN_AGENT)
    assert event.actor_id == admin_user.id
    assert event.detail == {"roles": ["moderator", "user"], "previous_roles": ["user"]}


def test_the_users_export_lists_its_security_events(user, password):
    tokens = login_from(user, password)

    body = client_from(access=tokens["access"]).get(f"{ME}/export").json()

    (login_event,) = [e for e in body["security_events"] if e["kind"] == "login"]
    assert (login_event["ip"], login_event["user_agent"]) == (IP, AGENT)


def test_a_long_user_agent_is_cut_not_refused(user, password):
    agent = "x" * 2000

    response = client_from(agent=agent).post(
        LOGIN, {"username": user.username, "password": password}, format="json"
    )

    assert response.status_code == 200
    event = AuditEvent.objects.get(kind=AuditKind.LOGIN)
    assert event.user_agent == agent[:512]


# --- the Django admin: read-only --------------------------------------------------------------


@pytest.fixture
def superuser(password):
    return UserFactory(password=password, roles=["user", "admin"], is_superuser=True, is_staff=True)


def test_the_admin_changelist_is_readable(client, superuser, user, password):
    login_from(user, password)
    client.force_login(superuser)

    response = client.get("/admin/accounts/auditevent/")

    assert response.status_code == 200
    page = response.content.decode()
    assert user.username in page
    assert IP in page
    assert client.get(f"/admin/accounts/auditevent/?kind__exact=login&q={user.username}").status_code == 200


def test_the_admin_audit_log_cannot_be_added_to_changed_or_deleted(client, superuser, user, password):
    login_from(user, password)
    event = AuditEvent.objects.get(kind=AuditKind.LOGIN)
    client.force_login(superuser)

    assert client.get("/admin/accounts/auditevent/add/").status_code == 403
    assert client.post("/admin/accounts/auditevent/add/", {"kind": "login"}).status_code == 403
    assert client.get(f"/admin/accounts/auditevent/{event.pk}/delete/").status_code == 403
    # The change page is a read-only view: a POST changes nothing.
    assert client.get(f"/admin/accounts/auditevent/{event.pk}/change/").status_code == 200
    client.post(f"/admin/accounts/auditevent/{event.pk}/change/", {"kind": "logout", "ip": "1.2.3.4"})
    event.refresh_from_db()
    assert (event.kind, event.ip) == (AuditKind.LOGIN, IP)
    bulk = client.post(
        "/admin/accounts/auditevent/",
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302, 403)
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_admin_role_may_read_the_audit_log_in_the_django_admin(client, admin_user, user, password):
    """The `admin` role "may use the Django admin" (migration 0002) and brings `is_staff` with it."""
    login_from(user, password)
    assert admin_user.is_staff
    assert not admin_user.is_superuser
    client.force_login(admin_user)

    response = client.get("/admin/accounts/auditevent/")

    assert response.status_code == 200
    assert client.get("/admin/accounts/auditevent/add/").status_code == 403


def test_a_plain_user_cannot_open_the_audit_log(client, user):
    client.force_login(user)

    response = client.get("/admin/accounts/auditevent/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert User.objects.get(id=user.id).is_staff is False
