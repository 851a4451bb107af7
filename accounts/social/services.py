"""Social login, linking and unlinking: the business rules.

The provider is called first, outside any transaction (it may take seconds);
then one transaction runs social-core's pipeline (find or create the account,
link the identity), opens the session as password login does, and writes the
audit rows, the `new_user` event and the notifications.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from social_core.exceptions import (
    AuthAssociationError,
    AuthCanceled,
    AuthConfigurationError,
    AuthCredentialError,
    AuthProviderError,
    AuthResponseError,
    AuthSessionError,
    SocialAuthBaseException,
)
from social_django.models import UserSocialAuth
from social_django.utils import load_strategy

from core.errors import AuthenticationFailed, NotFound, ServiceError, Unavailable, UpstreamFailed
from notifications.models import Kind as NotificationKind
from notifications.services import notification_send

from ..models import User
from ..services import AuditKind, TokenPair, audit_record, session_open
from ..services.mfa_challenges import PURPOSE_LOGIN, mfa_challenge_required
from ..services.reauth import reauth_confirm
from .backends import PROVIDER_OF_BACKEND, PROVIDERS, TITLES, TelegramBackend, YandexBackend

logger = logging.getLogger(__name__)

SOCIAL_LOGIN_FAILED = "The provider did not confirm who you are."


def _refused(**detail: Any) -> AuthenticationFailed:
    """401 with one message; `detail` (user_id, reason) goes to the audit row only."""
    exc = AuthenticationFailed(SOCIAL_LOGIN_FAILED, code="provider_auth_failed")
    for name, value in detail.items():
        setattr(exc, name, value)
    return exc


def _unavailable(provider: str) -> UpstreamFailed:
    return UpstreamFailed(
        f"{TITLES[provider]} could not be reached or gave an answer we cannot use; try again later."
    )


def social_backend_get(provider: str, *, request: Any = None, redirect_uri: str | None = None) -> Any:
    """The configured backend of a provider (API name), or 503 when it is not configured."""
    strategy = load_strategy(request)
    backend = strategy.get_backend(PROVIDERS[provider], redirect_uri=redirect_uri)
    if not backend.configured():
        raise Unavailable(
            f"{TITLES[provider]} login is not configured on this server.",
            code="provider_not_configured",
            retry_after=3600,
        )
    return backend


@contextlib.contextmanager
def provider_errors(provider: str) -> Iterator[None]:
    """social-core's exceptions as API answers: bad credentials 401, provider trouble 502.

    Logged by class and code only: exceptions may carry the request, never a token in our lines.
    """
    try:
        yield
    except AuthAssociationError as exc:
        if exc.code == "identity_in_use":
            raise ServiceError(
                "This account of the provider is already linked to another user.", code="identity_taken"
            ) from None
        raise ServiceError("The identity could not be linked.", code=exc.code) from None
    except (AuthCredentialError, AuthCanceled, AuthSessionError) as exc:
        logger.info("%s login refused: %s (%s)", provider, type(exc).__name__, exc.code)
        raise _refused(reason=exc.code) from None
    except AuthProviderError as exc:
        if exc.status_code in (400, 401, 403):  # the provider refused the token
            logger.info("%s login refused: HTTP %s", provider, exc.status_code)
            raise _refused(reason=f"http_{exc.status_code}") from None
        logger.warning(
            "%s unavailable: %s (%s, HTTP %s)", provider, type(exc).__name__, exc.code, exc.status_code
        )
        raise _unavailable(provider) from None
    except (AuthResponseError, AuthConfigurationError) as exc:
        # A configuration error here is the provider refusing our application (key or secret).
        logger.error("%s login failed: %s (%s)", provider, type(exc).__name__, exc.code)
        raise _unavailable(provider) from None
    except SocialAuthBaseException as exc:
        logger.info("%s login refused: %s (%s)", provider, type(exc).__name__, exc.code)
        raise _refused(reason=exc.code) from None


@contextlib.contextmanager
def _audited_failure(provider: str) -> Iterator[None]:
    """Every refused social login leaves an audit row (written after the transaction rolled back)."""
    try:
        yield
    except ServiceError as exc:
        if not isinstance(exc, AuthenticationFailed) and not hasattr(exc, "reason"):
            raise
        audit_record(
            AuditKind.LOGIN_FAILED,
            user_id=getattr(exc, "user_id", None),
            provider=provider,
            reason=getattr(exc, "reason", exc.code),
        )
        raise


@dataclass(frozen=True)
class LinkRequest:
    """A social login call that carries the caller's access token: a link to that account, which
    needs the proof of every change of how an account is reached (`reauth_confirm`). Without it a
    stolen access token could link the thief's Telegram, a login that outlives the victim's
    password change and logout-all."""

    user_id: Any
    session_id: Any
    current_password: str | None = None


def _link_proven(link: LinkRequest | None) -> Any:
    """The id of the account to link to, once its owner proved themselves (before any provider call)."""
    if link is None:
        return None
    user = User.objects.get(id=link.user_id)
    reauth_confirm(user=user, session_id=link.session_id, password=link.current_password)
    return user.id


def social_login_yandex(
    *,
    access_token: str | None = None,
    code: str | None = None,
    redirect_uri: str | None = None,
    link: LinkRequest | None = None,
    ip: str | None,
    user_agent: str,
) -> TokenPair:
    """`POST /auth/social/yandex`: a Yandex token, or a code we exchange with the app's secret."""
    link_user_id = _link_proven(link)
    backend = social_backend_get("yandex")
    with _audited_failure("yandex"), provider_errors("yandex"):
        if code is not None:
            profile = backend.profile_from_code(code=code, redirect_uri=redirect_uri or "")
        else:
            profile = backend.user_data(access_token or "")
    return social_login_finish(
        backend=backend, profile=profile, link_user_id=link_user_id, ip=ip, user_agent=user_agent
    )


def social_login_telegram(
    *, data: Mapping[str, Any], link: LinkRequest | None = None, ip: str | None, user_agent: str
) -> TokenPair:
    """`POST /auth/social/telegram`: the Login Widget's fields."""
    link_user_id = _link_proven(link)
    backend = social_backend_get("telegram")
    with _audited_failure("telegram"):
        profile = backend.profile_from_widget(data)
    return social_login_finish(
        backend=backend, profile=profile, link_user_id=link_user_id, ip=ip, user_agent=user_agent
    )


def social_login_callback(*, backend: Any, ip: str | None, user_agent: str) -> TokenPair:
    """The redirect flow's last step (the provider sent the browser back to us)."""
    provider = PROVIDER_OF_BACKEND[backend.name]
    if not backend.configured():
        raise Unavailable("Not configured.", code="provider_not_configured", retry_after=3600)
    with _audited_failure(provider), provider_errors(provider):
        if isinstance(backend, YandexBackend):
            profile = backend.profile_from_callback()
        else:
            assert isinstance(backend, TelegramBackend)
            profile = backend.profile_from_widget(backend.strategy.request_data())
    return social_login_finish(
        backend=backend, profile=profile, link_user_id=None, ip=ip, user_agent=user_agent
    )


def social_login_finish(
    *, backend: Any, profile: dict[str, Any], link_user_id: Any, ip: str | None, user_agent: str
) -> TokenPair:
    """Run the pipeline on a verified profile, then open a session as password login does (or, for
    an account with MFA on, answer 403 `mfa_required` once the pipeline's work is committed: a
    new link stays linked, the session waits for the code)."""
    provider = PROVIDER_OF_BACKEND[backend.name]
    with _audited_failure(provider), transaction.atomic():
        link_user = None
        if link_user_id is not None:
            link_user = User.objects.select_for_update().get(id=link_user_id)
        with provider_errors(provider):
            user = backend.strategy.authenticate(backend=backend, response=profile, user=link_user)
        if not isinstance(user, User):
            raise _refused(reason="no_user")
        if not user.is_active or user.deleted_at is not None:
            raise _refused(user_id=user.id, reason="inactive")
        identity = user.social_user  # type: ignore[attr-defined]
        if getattr(user, "social_new_association", False):
            identity_linked(user=user, provider=provider, uid=identity.uid, new_account=user.is_new)  # type: ignore[attr-defined]
        # RFC 8176 names no social login: the provider's name says how the user got in (API.md).
        if not user.mfa_enabled:
            pair = session_open(user=user, ip=ip, user_agent=user_agent, amr=(provider,))
            audit_record(AuditKind.LOGIN, user_id=user.id, session_id=pair.session_id, provider=provider)
            return pair
    raise mfa_challenge_required(
        user=user, amr=(provider,), purpose=PURPOSE_LOGIN, ip=ip, user_agent=user_agent
    )


def identity_linked(*, user: User, provider: str, uid: str, new_account: bool) -> None:
    """Audit a new link; a link to an account that existed before is told to its owner."""
    audit_record(AuditKind.IDENTITY_LINKED, user_id=user.id, provider=provider, uid=uid)
    if not new_account:
        title = f"A {TITLES[provider]} account was linked"
        notification_send(
            user_id=user.id,
            kind=NotificationKind.SECURITY,
            title=title,
            body=f"{title} to your account: you can now log in with it. "
            "If it was not you, unlink it and change your password.",
            data={"event": "identity_linked", "provider": provider},
        )


@transaction.atomic
def identity_unlink(*, user_id: Any, provider: str, actor_id: Any = None) -> None:
    """Unlink the user's identity of `provider`, unless it is their last way to log in.

    The user row is locked first, so two unlinks at once cannot both see the
    other identity and leave none.
    """
    user = User.objects.select_for_update().filter(id=user_id).first()
    backend_name = PROVIDERS.get(provider)
    if user is None or backend_name is None:
        raise NotFound("No such identity.")
    identities = UserSocialAuth.objects.filter(user_id=user.id)
    mine = identities.filter(provider=backend_name)
    uids = list(mine.values_list("uid", flat=True))
    if not uids:
        raise NotFound("No such identity.")
    if not user.has_usable_password() and not identities.exclude(provider=backend_name).exists():
        raise ServiceError(
            "This is the account's only way to log in: set a password or link another provider first.",
            code="last_login_method",
        )
    mine.delete()
    audit_record(
        AuditKind.IDENTITY_UNLINKED, user_id=user.id, actor_id=actor_id, provider=provider, uids=uids
    )
