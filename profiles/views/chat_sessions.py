from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import principal
from core.http import UUID_PATTERN
from core.pagination import PageSizeCursorPagination

from ..models import ChatSession
from ..serializers.chat_sessions import (
    ChatSessionCreateSerializer,
    ChatSessionSerializer,
    ChatSessionUpdateSerializer,
)
from ..services.chat_sessions import chat_session_create, chat_session_delete, chat_session_update


class ByLastActivity(PageSizeCursorPagination):
    ordering = ("-last_activity_at", "-created_at")  # type: ignore[assignment]  # DRF takes a tuple too


class ChatSessionViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's chat sessions, most recently active first; at most `MAX_USER_SESSIONS`."""

    serializer_class = ChatSessionSerializer
    pagination_class: type[CursorPagination] = ByLastActivity
    lookup_value_regex = UUID_PATTERN
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[ChatSession]:
        if getattr(self, "swagger_fake_view", False):
            return ChatSession.objects.none()
        return ChatSession.objects.filter(user_id=principal(self.request).id)

    @extend_schema(request=ChatSessionCreateSerializer, responses={201: ChatSessionSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Record a session; beyond the limit the least recently active one is deleted."""
        data = ChatSessionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = chat_session_create(user_id=principal(request).id, **data.validated_data)
        return Response(ChatSessionSerializer(session).data, status=status.HTTP_201_CREATED)

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
