"""Social login endpoints: the JSON API, the identities, and the browser redirect flow."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.decorators import decorator_from_middleware
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from social_core.actions import do_auth
from social_core.exceptions import SocialAuthBaseException
from social_django.models import UserSocialAuth
from social_django.utils import psa

from core.errors import ServiceError
from core.http import client_ip, user_agent
from core.pagination import PageSizeCursorPagination

from ..authentication import principal
from ..serializers import TokenPairSerializer
from ..services import TokenPair
from ..throttles import LoginAddressThrottle
from . import selectors, services
from .backends import TelegramBackend, YandexBackend
from .serializers import IdentitySerializer, TelegramLoginSerializer, YandexLoginSerializer


def pair_body(pair: TokenPair) -> dict[str, Any]:
    """The token pair as password login answers it: rendered by the serializer the schema names."""
    return dict(TokenPairSerializer(pair).data)


def _no_store(response: Response) -> Response:
    response["Cache-Control"] = "no-store"
    return response


class SocialLoginView(APIView):
    """Log in with a provider; with the caller's access token, link the identity to the caller instead.

    A bearer token is optional here, but one that is sent must be valid (401
    otherwise): a stale token must not turn a link into a new account.
    """

    permission_classes = [AllowAny]
    throttle_classes = [LoginAddressThrottle]

    def link_request(self, request: Request) -> services.LinkRequest | None:
        """With the caller's access token, a link: its proof is `current_password`, or a recent session."""
        if request.user is None:
            return None
        password = request.data.get("current_password") if isinstance(request.data, dict) else None
        return services.LinkRequest(
            user_id=principal(request).id,
            session_id=request.auth.session_id,  # type: ignore[union-attr]  # AccessClaims, from our authentication
            current_password=password if isinstance(password, str) else None,
        )


class YandexLoginView(SocialLoginView):
    """`{access_token}` from Yandex, or `{code, redirect_uri}` to exchange with the app's secret."""

    @extend_schema(
        request=YandexLoginSerializer,
        responses={
            200: TokenPairSerializer,
            502: OpenApiResponse(
                description="Yandex could not be reached or answered garbage: `provider_unavailable`."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = YandexLoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pair = services.social_login_yandex(
            **serializer.validated_data,
            link=self.link_request(request),
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
        return _no_store(Response(pair_body(pair)))


class TelegramLoginView(SocialLoginView):
    """The Telegram Login Widget's fields, as the widget gave them."""

    @extend_schema(request=TelegramLoginSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        serializer = TelegramLoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pair = services.social_login_telegram(
            data=dict(serializer.validated_data),
            link=self.link_request(request),
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
        return _no_store(Response(pair_body(pair)))


class IdentityPagination(PageSizeCursorPagination):
    ordering = "-created"


class IdentityViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The caller's linked providers; deleting one unlinks it (not the last way to log in)."""

    serializer_class = IdentitySerializer
    pagination_class = IdentityPagination
    lookup_field = "provider"
    lookup_value_regex = "[a-z]+"

    def get_queryset(self) -> QuerySet[UserSocialAuth]:
        if getattr(self, "swagger_fake_view", False):
            return UserSocialAuth.objects.none()
        return selectors.identities_of(user_id=principal(self.request).id)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return _no_store(super().list(request, *args, **kwargs))

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.identity_unlink(user_id=principal(request).id, provider=kwargs["provider"])
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- the browser redirect flow ------------------------------------------------------
# The API runs without Django's session middleware; these two views need a session
# for the `state` of the OAuth round trip, and only for that (no one is logged in to it).
with_session = decorator_from_middleware(SessionMiddleware)


def get_only(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """GET (and HEAD) only; any other method is a JSON 405 naming the allowed ones.

    Django's `require_GET` answers an empty text/html 405, and before it the CSRF middleware
    answered a POST or PUT with its HTML page: these views change nothing on a GET and read no
    cookie-authenticated session, so they are exempt from CSRF, and every answer is JSON.
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse(
                {"detail": f'Method "{request.method}" not allowed.', "code": "method_not_allowed"},
                status=405,
            )
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return wrapper


#: The cookie that binds Telegram's widget return to the browser that started the login.
TELEGRAM_STATE_COOKIE = "tg_login_state"


def telegram_begin(request: HttpRequest) -> HttpResponse:
    """A nonce for the widget: in a cookie of this browser, and in the `auth_url` that the page
    gives the widget as `data-auth-url`. Telegram sends the browser back to that URL, state
    included; `complete` takes the payload only when the two match. Without it, anyone could
    send a victim a link with their own freshly signed payload and log the victim's browser
    into the attacker's account (login CSRF)."""
    state = secrets.token_urlsafe(32)
    complete_url = request.build_absolute_uri(reverse("social:complete", args=["telegram"]))
    response = JsonResponse(
        {
            "auth_url": f"{complete_url}?{urlencode({'state': state})}",
            "expires_in": settings.TELEGRAM_AUTH_MAX_AGE,
        }
    )
    response.set_cookie(
        TELEGRAM_STATE_COOKIE,
        state,
        max_age=settings.TELEGRAM_AUTH_MAX_AGE,
        path=reverse("social:complete", args=["telegram"]),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",  # sent on Telegram's top-level redirect back, not on cross-site requests
    )
    return response


def telegram_state_matches(request: HttpRequest) -> bool:
    given, kept = request.GET.get("state", ""), request.COOKIES.get(TELEGRAM_STATE_COOKIE, "")
    return bool(given) and bool(kept) and hmac.compare_digest(given.encode(), kept.encode())


def hand_over(params: dict[str, Any]) -> HttpResponse:
    """To the frontend, in the URL fragment: a browser sends it to no server and no `Referer`."""
    base = settings.SOCIAL_AUTH_FRONTEND_URL.split("#", 1)[0]
    return HttpResponseRedirect(f"{base}#{urlencode(params)}")


@never_cache
@get_only
@with_session
@psa("social:complete")
def begin(request: HttpRequest, backend: str) -> HttpResponse:
    """`/auth/social/login/<backend>/`: off to the provider; for Telegram, the widget's state."""
    provider_backend: Any = request.backend  # type: ignore[attr-defined]
    # Each start stores a `state` and a browser session: the login limit per address applies.
    if not LoginAddressThrottle().allow_request(request, None):  # type: ignore[arg-type]
        return hand_over({"error": "throttled"})
    if isinstance(provider_backend, TelegramBackend):
        return telegram_begin(request)
    if not isinstance(provider_backend, YandexBackend):
        return hand_over({"error": "unsupported_flow"})
    if not provider_backend.configured():
        return hand_over({"error": "provider_not_configured"})
    try:
        return do_auth(provider_backend)  # type: ignore[no-any-return]
    except SocialAuthBaseException:
        return hand_over({"error": "provider_unavailable"})


@never_cache
@get_only
@with_session
@psa("social:complete")
def complete(request: HttpRequest, backend: str) -> HttpResponse:
    """The provider sends the browser back here; the token pair goes on to the frontend."""
    if isinstance(request.backend, TelegramBackend):  # type: ignore[attr-defined]
        if not telegram_state_matches(request):
            return hand_over({"error": "state_mismatch"})
        response = _complete(request)
        response.delete_cookie(TELEGRAM_STATE_COOKIE, path=request.path)
        return response
    return _complete(request)


def _complete(request: HttpRequest) -> HttpResponse:
    try:
        pair = services.social_login_callback(
            backend=request.backend,  # type: ignore[attr-defined]
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
    except ServiceError as exc:
        # `mfa_required` goes on with its `mfa_token` and `methods` (comma-separated), for the
        # frontend to ask for the code and call /auth/mfa/verify.
        extra = {
            name: ",".join(value) if isinstance(value, list) else value for name, value in exc.extra.items()
        }
        return hand_over({"error": exc.code, **extra})
    except ValidationError:
        return hand_over({"error": "invalid"})
    return hand_over(pair_body(pair))
