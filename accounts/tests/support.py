"""What several test modules need: the test password, the user shape, a client with a token,
a dead cache. The race of several threads at once is testing.races.run_at_once."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from rest_framework.test import APIClient

#: The password of every test user (`UserFactory`, the `user` fixtures); long enough for the validators.
PASSWORD = "a-long enough pass phrase"

LOGIN = "/api/v1/auth/login"

#: The fields of a user as `/users/me` shows it (API.md).
USER_FIELDS = {
    "id",
    "username",
    "email",
    "email_verified",
    "email_pending",
    "full_name",
    "roles",
    "is_active",
    "is_admin",
    "mfa",
    "created_at",
    "updated_at",
}

#: A cache that is down: django-redis pointed at a closed port, failing fast.
CACHE_DOWN = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
            "SOCKET_CONNECT_TIMEOUT": 0.2,
            "SOCKET_TIMEOUT": 0.2,
        },
    }
}


def bearer(access: str, **defaults: Any) -> APIClient:
    """A client that sends this access token (the one way tests make one)."""
    client = APIClient(**defaults)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def login_tokens(user: Any, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    """Log `user` in over the API (by username); the token-pair body.

    A user whose role demands MFA (`MFA_REQUIRED_ROLES`: administrators, by default) logs in as
    a real one does: TOTP on (turned on here if it is not yet), the password, then the code, so
    the session passes the administrators' endpoints.
    """
    from accounts.models import User
    from accounts.services.mfa import mfa_required_for
    from accounts.tests.mfa_support import mfa_login_tokens, mfa_on

    row = User.objects.filter(pk=user.pk).select_related("totp_device").first()
    if row is not None and (
        row.mfa_enabled or mfa_required_for(is_superuser=row.is_superuser, roles=row.roles)
    ):
        if not row.mfa_enabled:
            mfa_on(row)
        return mfa_login_tokens(row, password, **extra)
    response = APIClient().post(
        LOGIN, {"username": user.username, "password": password}, format="json", **extra
    )
    assert response.status_code == 200, response.content
    return dict(response.json())


def bearer_for(user: Any, password: str = PASSWORD, **extra: Any) -> APIClient:
    """A client carrying the access token of a fresh session of `user`; its tokens in `.tokens`."""
    tokens = login_tokens(user, password, **extra)
    client = bearer(tokens["access"])
    client.tokens = tokens  # type: ignore[attr-defined]
    return client


def committing(client: Any, capture_on_commit: Any) -> Any:
    """The Django test client with each request committing its on_commit callbacks (the events,
    the cache writes), as a real request's transaction would."""
    original = client.request

    def request(**kwargs: Any) -> Any:
        with capture_on_commit(execute=True):
            return original(**kwargs)

    client.request = request
    return client


VERIFY_SUBJECT = "Confirm your email address"


def verification_link(to: str) -> dict[str, str]:
    """`{uid, token}` of the last verification mail sent to `to`, read from the mailbox as a client
    reads the mail: the link in the text part (`EMAIL_VERIFY_URL`)."""
    from django.core import mail

    sent = [m for m in mail.outbox if m.to == [to] and m.subject == VERIFY_SUBJECT]
    assert sent, f"no verification mail to {to}"
    link = re.search(r"\S*[?&]uid=\S+", sent[-1].body)
    assert link is not None, sent[-1].body
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link.group()).query)
    return {"uid": query["uid"][0], "token": query["token"][0]}


def verification_link_use(to: str) -> Any:
    """Use the last verification link mailed to `to` (`POST /auth/email/verify`); the response."""
    return APIClient().post("/api/v1/auth/email/verify", verification_link(to), format="json")
