"""Links mailed to an account (reset, verification): `{uid}` and `{token}` in a URL template, and the
live account a link names while its token is valid. One place for both, so the two kinds of link
are encoded, looked up and refused alike."""

from __future__ import annotations

from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ValidationError
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from core.errors import ServiceError

from .models import User


def signed_link(template: str, user: User, tokens: PasswordResetTokenGenerator) -> str:
    """`template` (a setting such as `PASSWORD_RESET_URL`) with the user's `{uid}` and a `{token}`."""
    uid = urlsafe_base64_encode(force_bytes(str(user.id)))
    return template.format(uid=uid, token=tokens.make_token(user))


def signed_link_user(
    *, uid: str, token: str, tokens: PasswordResetTokenGenerator, invalid: str, for_update: bool = False
) -> User:
    """The live account a link names (row-locked with `for_update`), while its token is valid;
    `ServiceError` (`invalid_token`, with `invalid` for people) otherwise, whatever was wrong."""
    users = User.objects.select_for_update() if for_update else User.objects.all()
    try:
        user_id = urlsafe_base64_decode(uid).decode()
        user = users.filter(id=user_id, is_active=True, deleted_at__isnull=True).first()
    except (ValueError, ValidationError, UnicodeDecodeError):
        user = None
    if user is None or not tokens.check_token(user, token):
        raise ServiceError(invalid, code="invalid_token")
    return user
