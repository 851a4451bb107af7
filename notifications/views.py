"""Notifications API: one viewset, verbs as actions around one service call each."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.http import UUID_PATTERN
from core.permissions import IsAdmin

from . import services
from .models import Notification
from .serializers import (
    BroadcastAcceptedSerializer,
    BroadcastSerializer,
    NotificationSerializer,
    PreferencesSerializer,
    UnreadCountSerializer,
)


def caller_id(request: Request) -> Any:
    """The authenticated caller's id: all this app needs of the accounts app's principal."""
    return request.user.pk


class NotificationViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The caller's notifications: newest first, `?unread=true` for the unread ones."""

    serializer_class = NotificationSerializer
    lookup_value_regex = UUID_PATTERN

    def get_queryset(self) -> QuerySet[Notification]:
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        notifications = Notification.objects.filter(user_id=caller_id(self.request))
        if self.request.query_params.get("unread", "").lower() in {"1", "true", "yes"}:
            notifications = notifications.filter(read_at__isnull=True)
        return notifications

    @extend_schema(parameters=[OpenApiParameter("unread", bool, description="only unread ones")])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.notification_delete(user_id=caller_id(request), notification_id=kwargs["pk"])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: NotificationSerializer})
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str) -> Response:
        notification = services.notification_read(user_id=caller_id(request), notification_id=pk)
        return Response(NotificationSerializer(notification).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request: Request) -> Response:
        services.notifications_read_all(user_id=caller_id(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: UnreadCountSerializer})
    @action(detail=False, methods=["get"], url_path="unread-count", pagination_class=None)
    def unread_count(self, request: Request) -> Response:
        return Response({"count": services.unread_count(user_id=caller_id(request))})

    @extend_schema(methods=["GET"], request=None, responses={200: PreferencesSerializer})
    @extend_schema(methods=["PATCH"], request=PreferencesSerializer, responses={200: PreferencesSerializer})
    @action(detail=False, methods=["get", "patch"], pagination_class=None)
    def preferences(self, request: Request) -> Response:
        """Per kind: whether it is also sent by email."""
        user_id = caller_id(request)
        if request.method == "GET":
            return Response(services.preferences_get(user_id=user_id))
        serializer = PreferencesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(services.preferences_update(user_id=user_id, changes=serializer.validated_data))

    @extend_schema(request=BroadcastSerializer, responses={202: BroadcastAcceptedSerializer})
    @action(detail=False, methods=["post"], permission_classes=[IsAdmin])
    def broadcast(self, request: Request) -> Response:
        """Notify users by id, everyone with a role, or everyone; fanned out in batches by a task."""
        serializer = BroadcastSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        broadcast = services.broadcast_create(created_by=caller_id(request), **serializer.validated_data)
        return Response({"id": str(broadcast.id), "status": "queued"}, status=status.HTTP_202_ACCEPTED)
