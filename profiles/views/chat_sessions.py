from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import principal
from core.pagination import PageSizeCursorPagination

from ..models import ChatSession
from ..serializers.chat_sessions import (
    ChatSessionCreateSerializer,
    ChatSessionSerializer,
    ChatSessionUpdateSerializer,
)
from ..services.chat_sessions import chat_session_create, chat_session_delete, chat_session_update
from .owned import CallerOwnedViewSet


class ByLastActivity(PageSizeCursorPagination):
    ordering = ("-last_activity_at", "-created_at")  # type: ignore[assignment]  # DRF takes a tuple too


class ChatSessionViewSet(mixins.UpdateModelMixin, CallerOwnedViewSet):
    """The caller's chat sessions, most recently active first; at most `MAX_USER_SESSIONS`."""

    model = ChatSession
    serializer_class = ChatSessionSerializer
    pagination_class: type[CursorPagination] = ByLastActivity
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(request=ChatSessionCreateSerializer, responses={201: ChatSessionSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Record a session; beyond the limit the least recently active one is deleted."""
        return self.create_through(request, chat_session_create, body=ChatSessionCreateSerializer)

    @extend_schema(request=ChatSessionUpdateSerializer, responses={200: ChatSessionSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Title, metadata; `touch` or `last_activity_at` move it forward (never back)."""
        # What GET answers, for the fields sent back: read only when the body has one.
        data = ChatSessionUpdateSerializer(
            data=request.data, current=lambda: ChatSessionSerializer(self.get_object()).data
        )
        data.is_valid(raise_exception=True)
        session = chat_session_update(
            user_id=principal(request).id, session_id=kwargs["pk"], **data.validated_data
        )
        return Response(ChatSessionSerializer(session).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        chat_session_delete(user_id=principal(request).id, session_id=kwargs["pk"])
        return Response(status=status.HTTP_204_NO_CONTENT)
