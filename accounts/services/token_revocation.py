"""RFC 7009 token revocation: a client that holds a token ends its session without an access token.

Logout (`/auth/logout`) needs a live access token; a client that only has its refresh token left
(an app closing with an expired access token, a server cleaning up) revokes through this instead.
Either token of a session names it (`sid`), and revoking one ends both, as logout does: the
session is the unit of revocation here (RFC 7009, 2.1, lets revoking one token revoke others of
the same grant).

Whatever the token, the answer is the same (RFC 7009, 2.2: "invalid tokens do not cause an error
response"): a caller learns nothing about a token it presents.
"""

from __future__ import annotations

import logging
import uuid

from rest_framework_simplejwt.exceptions import TokenError

from core.errors import NotFound

from ..tokens import SessionAccessToken, SessionRefreshToken
from .sessions import session_revoke

logger = logging.getLogger(__name__)


def _session_of(raw: str) -> tuple[str, str] | None:
    """(session id, user id) of a valid access or refresh token of this service, else None.

    The same checks as every other use of the token (signature, lifetime, `iss`/`aud`): an
    expired token's session cannot be used with it any more, so there is nothing to revoke.
    """
    for kind in (SessionAccessToken, SessionRefreshToken):
        try:
            token = kind(raw)  # type: ignore[arg-type]
        except TokenError:
            continue
        try:
            return str(uuid.UUID(str(token.get("sid")))), str(uuid.UUID(str(token.get("sub"))))
        except ValueError:  # signed here, so never in practice; still no 500 for it
            return None
    return None


def token_revoke(*, token: str) -> bool:
    """End the session of `token`; whether a session was found for it (callers answer the same)."""
    found = _session_of(token)
    if found is None:
        return False
    session_id, user_id = found
    try:
        session_revoke(session_id=session_id, user_id=user_id, reason="logout")
    except NotFound:
        return False
    logger.info("session %s of user %s revoked by token revocation", session_id, user_id)
    return True
