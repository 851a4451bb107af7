"""LLM settings and the catalogue: one settings object per user, so plain views, not a viewset."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import principal

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


class LLMCatalogView(APIView):
    """The providers and models users may choose, with their limits, and each purpose's default."""

    @extend_schema(responses={200: CatalogSerializer})
    def get(self, request: Request) -> Response:
        return Response(catalog().as_api())
