"""LLM settings and the catalogue: one settings object per user, so plain views, not a viewset."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import principal
from accounts.hot_path_views import bearer_caller, lean_view

from ..llm_catalog import catalog
from ..selectors.llm_settings import llm_settings_effective
from ..serializers.llm_settings import (
    CatalogSerializer,
    LLMSettingsBodySerializer,
    LLMSettingsInputSerializer,
    LLMSettingsSerializer,
)
from ..services.llm_settings import llm_settings_update


def _changes(request: Request, *, partial: bool) -> dict[str, dict[str, Any]]:
    user_id = principal(request).id
    serializer = LLMSettingsInputSerializer(
        data=request.data, partial=partial, current=lambda: llm_settings_effective(user_id=user_id)
    )
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class LLMSettingsView(APIView):
    """The caller's model per purpose; a purpose never set answers the catalogue's default.

    GET is read by other services on every agent call: answered from the cache
    (no SQL query when warm) and without a serializer.
    """

    @extend_schema(responses={200: LLMSettingsSerializer})
    def get(self, request: Request) -> Response:
        return Response(llm_settings_effective(user_id=principal(request).id))

    @extend_schema(request=LLMSettingsBodySerializer, responses={200: LLMSettingsSerializer})
    def put(self, request: Request) -> Response:
        """Replace every purpose (each given whole)."""
        changes = _changes(request, partial=False)
        return Response(llm_settings_update(user_id=principal(request).id, changes=changes, replace=True))

    @extend_schema(request=LLMSettingsBodySerializer(partial=True), responses={200: LLMSettingsSerializer})
    def patch(self, request: Request) -> Response:
        """Change some purposes, or some fields of a purpose."""
        changes = _changes(request, partial=True)
        return Response(llm_settings_update(user_id=principal(request).id, changes=changes))


def _effective_for_bearer(request: HttpRequest) -> dict[str, Any] | None:
    """The lean GET (accounts/hot_path_views.py): the caller's settings, without DRF's request cycle."""
    caller = bearer_caller(request)
    return None if caller is None else llm_settings_effective(user_id=caller.id)


#: What the URLconf routes: GET through the lean dispatch, PUT, PATCH and every refusal through DRF.
llm_settings_view = lean_view(LLMSettingsView, get=_effective_for_bearer)


class LLMCatalogView(APIView):
    """The providers and models users may choose, with their limits, and each purpose's default."""

    @extend_schema(responses={200: CatalogSerializer})
    def get(self, request: Request) -> Response:
        return Response(catalog().as_api())
