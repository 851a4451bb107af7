"""Accounts API: token endpoints as plain views, users and sessions as viewsets.

Each view parses input, calls one service and shapes the answer.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from core import parsers
from core.http import UUID_PATTERN, client_ip, user_agent
from core.ids import Id
from core.permissions import ADMIN_ROLE, IsAdmin, role_mfa_check
from core.public_documents import public_document
from core.serializers import Current

from . import selectors, services
from .authentication import principal
from .models import AuthSession, RoleRequest, User
from .oidc import RevocationSerializer, discovery_document
from .serializers import (
    AdminUserCreateSerializer,
    AdminUserSerializer,
    AdminUserUpdateSerializer,
    DecisionSerializer,
    DetailSerializer,
    EmailVerifySerializer,
    LoginSerializer,
    MeUpdateSerializer,
    PasswordChangeSerializer,
    PasswordConfirmSerializer,
    PasswordFirstSetSerializer,
    PasswordResetConfirmSerializer,
    PasswordResetSerializer,
    RefreshedPairSerializer,
    RefreshSerializer,
    RegisterSerializer,
    RoleRequestCreateSerializer,
    RoleRequestSerializer,
    RoleSerializer,
    SessionSerializer,
    TokenPairSerializer,
    UserSerializer,
    VerifiedSerializer,
    VerifySerializer,
)
from .services.token_revocation import token_revoke
from .throttles import (
    EmailVerifyResendThrottle,
    LoginAddressThrottle,
    PasswordResetAddressThrottle,
    RegisterAddressThrottle,
)
from .tokens import jwks


def _valid(
    serializer_class: type[BaseSerializer], request: Request, current: Current = None
) -> dict[str, Any]:
    """The body, checked (`current`: what the resource's GET answers, for the fields sent back)."""
    serializer = serializer_class(data=request.data, current=current)  # type: ignore[call-arg]
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class PublicAPIView(APIView):
    """An endpoint for callers without a token: a stale token must not get them a 401."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]


class RegisterView(PublicAPIView):
    """Create an account (role `user`). It does not log in: call `/auth/login` next."""

    throttle_classes = [RegisterAddressThrottle]

    @extend_schema(request=RegisterSerializer, responses={201: UserSerializer})
    def post(self, request: Request) -> Response:
        data = _valid(RegisterSerializer, request)
        user = services.user_register(**data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(PublicAPIView):
    """Open a session: JSON `{username, password}` or the OAuth2 password form.

    `username` may be the username or the email. Every failure is the same 401;
    too many failures for one account lock it (429 with `Retry-After`).
    """

    throttle_classes = [LoginAddressThrottle]
    parser_classes = [parsers.JSONParser, parsers.FormParser]

    @extend_schema(request=LoginSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        data = _valid(LoginSerializer, request)
        pair = services.session_login(
            identifier=data["username"],
            password=data["password"],
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
        return Response(TokenPairSerializer(pair).data)


class RestoreView(PublicAPIView):
    """Undo your own account deletion within `ACCOUNT_RESTORE_DAYS`."""

    throttle_classes = [LoginAddressThrottle]

    @extend_schema(request=LoginSerializer, responses={200: UserSerializer})
    def post(self, request: Request) -> Response:
        data = _valid(LoginSerializer, request)
        user = services.user_restore_self(identifier=data["username"], password=data["password"])
        return Response(UserSerializer(user).data)


class PasswordChangeView(APIView):
    """Change your password; your other sessions end, this one stays."""

    @extend_schema(request=PasswordChangeSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        data = _valid(PasswordChangeSerializer, request)
        caller = principal(request)
        services.password_change(user_id=caller.id, session_id=caller.session_id, **data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordResetView(PublicAPIView):
    """Ask for a reset link. The answer is the same whether or not the address is known."""

    throttle_classes = [PasswordResetAddressThrottle]

    @extend_schema(request=PasswordResetSerializer, responses={202: DetailSerializer})
    def post(self, request: Request) -> Response:
        data = _valid(PasswordResetSerializer, request)
        services.password_reset_request(email=data["email"])
        accepted = {"detail": "If the address belongs to an account, a reset link has been sent to it."}
        return Response(DetailSerializer(accepted).data, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmView(PublicAPIView):
    throttle_classes = [PasswordResetAddressThrottle]

    @extend_schema(request=PasswordResetConfirmSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        services.password_reset_confirm(**_valid(PasswordResetConfirmSerializer, request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordFirstSetView(APIView):
    """A first password for an account made by social login, from a session opened less than
    `REAUTH_MAX_AGE` seconds ago. No other session ends: a way in is added, none replaced."""

    @extend_schema(request=PasswordFirstSetSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        data = _valid(PasswordFirstSetSerializer, request)
        caller = principal(request)
        services.password_first_set(user_id=caller.id, session_id=caller.session_id, **data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EmailVerifyView(PublicAPIView):
    """Use the link mailed to an address: the address is verified, or a pending one becomes the account's."""

    throttle_classes = [PasswordResetAddressThrottle]

    @extend_schema(request=EmailVerifySerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        services.email_verify(**_valid(EmailVerifySerializer, request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EmailVerifyResendView(APIView):
    """A new link to your unverified (or pending) address; `THROTTLE_EMAIL_VERIFY_USER` per user."""

    throttle_classes = [EmailVerifyResendThrottle]

    @extend_schema(request=None, responses={202: DetailSerializer})
    def post(self, request: Request) -> Response:
        services.email_verification_resend(user_id=principal(request).id)
        accepted = {"detail": "A new verification link is on its way."}
        return Response(DetailSerializer(accepted).data, status=status.HTTP_202_ACCEPTED)


class RefreshView(PublicAPIView):
    """Spend a refresh token for a new pair. A refresh token works once: presenting a
    spent one revokes its whole session."""

    @extend_schema(request=RefreshSerializer, responses={200: RefreshedPairSerializer})
    def post(self, request: Request) -> Response:
        data = _valid(RefreshSerializer, request)
        pair = services.session_refresh(refresh=data["refresh"])
        return Response(RefreshedPairSerializer(pair).data)


class VerifyView(PublicAPIView):
    """For other services: is this access token live (session not revoked, user active)?"""

    @extend_schema(request=VerifySerializer, responses={200: VerifiedSerializer})
    def post(self, request: Request) -> Response:
        data = _valid(VerifySerializer, request)
        return Response(VerifiedSerializer(services.access_token_verify(token=data["token"])).data)


class RevokeView(PublicAPIView):
    """RFC 7009 token revocation: end the session of an access or refresh token.

    For a client that has no live access token left to log out with. The answer is 200 whether
    or not the token was valid (RFC 7009, 2.2), so it tells nothing about a token.
    """

    parser_classes = [parsers.FormParser, parsers.JSONParser]

    @extend_schema(request=RevocationSerializer, responses={200: None})
    def post(self, request: Request) -> Response:
        data = _valid(RevocationSerializer, request)
        token_revoke(token=data["token"])
        return Response(status=status.HTTP_200_OK)


class LogoutView(APIView):
    """End the session the access token belongs to; its tokens are refused from now on."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        caller = principal(request)
        assert caller.session_id is not None  # a bearer token always names its session
        services.session_revoke(session_id=caller.session_id, user_id=caller.id, reason="logout")
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """End every session of the caller."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        services.sessions_revoke_all(user_id=principal(request).id, reason="logout_all")
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The caller's active sessions; deleting one revokes it."""

    serializer_class = SessionSerializer
    lookup_value_regex = UUID_PATTERN
    ordering = "-last_used_at"

    def get_queryset(self) -> QuerySet[AuthSession]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return AuthSession.objects.none()
        return AuthSession.objects.active().filter(user_id=principal(self.request).id)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.session_revoke(session_id=kwargs["pk"], user_id=principal(request).id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserFilter(filters.FilterSet):
    role = filters.CharFilter(field_name="groups__name", label="Role name")
    is_active = filters.BooleanFilter()
    is_deleted = filters.BooleanFilter(field_name="deleted_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = User
        fields = ["role", "is_active", "is_deleted"]


class UserViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Administrators manage every account; `/users/me` is each user's own."""

    permission_classes = [IsAdmin]
    lookup_value_regex = UUID_PATTERN
    queryset = User.objects.select_related("totp_device").prefetch_related("groups")
    filter_backends = [filters.DjangoFilterBackend, SearchFilter, OrderingFilter]
    filterset_class = UserFilter
    search_fields = ["username", "email", "full_name"]
    ordering_fields = ["username", "email", "created_at", "updated_at"]
    ordering = "-created_at"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_serializer_class(self) -> type[BaseSerializer]:
        return {
            "create": AdminUserCreateSerializer,
            "partial_update": AdminUserUpdateSerializer,
        }.get(self.action or "", AdminUserSerializer)

    def get_object(self) -> User:
        return services.user_get(user_id=self.kwargs["pk"])

    @extend_schema(responses={201: AdminUserSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = _valid(AdminUserCreateSerializer, request)
        user = services.user_create(actor_id=principal(request).id, **data)
        return Response(AdminUserSerializer(user).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: AdminUserSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        target = self.get_object()
        data = _valid(AdminUserUpdateSerializer, request, current=lambda: AdminUserSerializer(target).data)
        user = services.user_admin_update(user_id=target.id, actor_id=principal(request).id, **data)
        return Response(AdminUserSerializer(selectors.user_with_roles(user_id=user.id)).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.user_soft_delete(user_id=self.get_object().id, actor_id=principal(request).id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: AdminUserSerializer})
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str) -> Response:
        user = services.user_restore(user_id=self.get_object().id, actor_id=principal(request).id)
        return Response(AdminUserSerializer(user).data)


class MeViewSet(viewsets.ViewSet):
    """The caller's own account, `/users/me` and `/users/me/export`: one resource, one home.

    GET is answered from the cached principal without a serializer: this is
    the hottest read of the platform, and the benchmark (benchmarks/hot_path.py)
    measured the serializer's per-request cost as a large share of the whole
    request. `accounts.api_shapes.user_api_shape` builds the body either way (a
    test holds it equal to `UserSerializer`).
    """

    @extend_schema(responses={200: UserSerializer})
    def retrieve(self, request: Request) -> Response:
        """Your account."""
        return Response(principal(request).as_api_user())

    @extend_schema(request=MeUpdateSerializer, responses={200: UserSerializer})
    def partial_update(self, request: Request) -> Response:
        """Change your username, email or full name. A new email needs `current_password`
        (a wrong one counts toward the login lockout), or, for an account without a password
        (social login), a session opened less than `REAUTH_MAX_AGE` s ago (403 `reauth_required`
        otherwise); the old address is told by mail."""
        caller = principal(request)
        data = _valid(MeUpdateSerializer, request, current=caller.as_api_user)
        user = services.user_update_self(user_id=caller.id, session_id=_session_id(request), **data)
        return Response(UserSerializer(selectors.user_with_roles(user_id=user.id)).data)

    @extend_schema(request=PasswordConfirmSerializer, responses={204: None})
    def destroy(self, request: Request) -> Response:
        """Delete your account (your password confirms it): every session ends; you may undo it
        with `/auth/restore` within `ACCOUNT_RESTORE_DAYS`."""
        data = _valid(PasswordConfirmSerializer, request)
        services.user_delete_self(
            user_id=principal(request).id, password=data.get("password"), session_id=_session_id(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["get"])
    def export(self, request: Request) -> Response:
        """Everything the service stores about the caller, as JSON."""
        response = Response(selectors.user_export(user_id=principal(request).id))
        response["Content-Disposition"] = 'attachment; filename="user-data.json"'
        return response


def _session_id(request: Request) -> str:
    """The caller's session (the access token's `sid`): the proof of a recent login for re-authentication."""
    return str(request.auth.session_id)  # type: ignore[union-attr]  # AccessClaims, from our authentication


class RoleListView(APIView):
    """The roles an account can have, with a description each."""

    @extend_schema(responses={200: RoleSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(selectors.roles_list())


class RoleRequestFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=RoleRequest.Status.choices)

    class Meta:
        model = RoleRequest
        fields = ["status"]


class RoleRequestViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Ask for a role; administrators see every request and decide them."""

    serializer_class = RoleRequestSerializer
    lookup_value_regex = UUID_PATTERN
    filterset_class = RoleRequestFilter

    def get_queryset(self) -> QuerySet[RoleRequest]:
        if getattr(self, "swagger_fake_view", False):
            return RoleRequest.objects.none()
        caller = principal(self.request)
        requests = RoleRequest.objects.select_related("user", "role")
        if not caller.is_admin:
            return requests.filter(user_id=caller.id)
        # Everyone's requests are the administrators' to see: not from a session without MFA
        # (403 `mfa_required`), rather than a silently narrowed list an admin UI would misread.
        role_mfa_check(self.request, ADMIN_ROLE)
        return requests

    @extend_schema(request=RoleRequestCreateSerializer, responses={201: RoleRequestSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = _valid(RoleRequestCreateSerializer, request)
        created = services.role_request_create(user_id=principal(request).id, **data)
        return Response(self._shape(created.id), status=status.HTTP_201_CREATED)

    def _shape(self, request_id: Id) -> Any:
        return RoleRequestSerializer(
            RoleRequest.objects.select_related("user", "role").get(id=request_id)
        ).data

    @extend_schema(request=None, responses={200: RoleRequestSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        cancelled = services.role_request_cancel(request_id=pk, user_id=principal(request).id)
        return Response(self._shape(cancelled.id))

    @extend_schema(request=DecisionSerializer, responses={200: RoleRequestSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def approve(self, request: Request, pk: str) -> Response:
        data = _valid(DecisionSerializer, request)
        decided = services.role_request_approve(request_id=pk, admin_id=principal(request).id, **data)
        return Response(self._shape(decided.id))

    @extend_schema(request=DecisionSerializer, responses={200: RoleRequestSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def reject(self, request: Request, pk: str) -> Response:
        data = _valid(DecisionSerializer, request)
        decided = services.role_request_reject(request_id=pk, admin_id=principal(request).id, **data)
        return Response(self._shape(decided.id))


def jwks_view(request: HttpRequest) -> HttpResponse:
    """`/.well-known/jwks.json`: the public keys that verify access tokens (cacheable, any origin)."""
    return public_document(request, jwks())


def openid_configuration_view(request: HttpRequest) -> HttpResponse:
    """`/.well-known/openid-configuration`: where a resource server finds the issuer and its keys."""
    return public_document(request, discovery_document())
