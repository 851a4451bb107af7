"""`config.urls` plus `/bench/stock/me`: `/users/me` served the stock SimpleJWT way.

Stock `rest_framework_simplejwt.authentication.JWTAuthentication`: the token's
signature and expiry, then one `User` query per request; no session check, no
cache. The body is the same `UserSerializer` data as `GET /api/v1/users/me`. The
roles come from the token's `roles` claim, so the baseline makes exactly one
query (serializing the model itself would add two `groups` queries: `roles` and
`is_admin`), which gives the baseline the benefit of the doubt.
"""

from __future__ import annotations

from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.cache import Principal
from accounts.serializers import UserSerializer
from config import urls as service_urls


class StockMeView(APIView):
    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        roles = list(request.auth.get("roles", [])) if request.auth is not None else []
        return Response(UserSerializer(Principal.from_user(request.user, roles)).data)


urlpatterns = [
    path("bench/stock/me", StockMeView.as_view(), name="bench-stock-me"),
    *service_urls.urlpatterns,
]

handler400 = service_urls.handler400
handler403 = service_urls.handler403
handler404 = service_urls.handler404
handler500 = service_urls.handler500
