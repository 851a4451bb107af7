from __future__ import annotations

from typing import Any

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import principal
from core.pagination import PageSizeCursorPagination

from ..models import QuizResult
from ..selectors.quiz_results import quiz_stats
from ..serializers.quiz_results import QuizResultCreateSerializer, QuizResultSerializer, QuizStatsSerializer
from ..services.quiz_results import quiz_result_create, quiz_result_delete
from .owned import CallerOwnedViewSet


class ByCompletion(PageSizeCursorPagination):
    ordering = ("-completed_at", "-created_at")  # type: ignore[assignment]  # DRF takes a tuple too


class QuizResultFilter(filters.FilterSet):
    topic = filters.CharFilter(help_text="Only the results of this topic.")

    class Meta:
        model = QuizResult
        fields = ["topic"]


class QuizResultViewSet(CallerOwnedViewSet):
    """The caller's quiz results, latest first; `?topic=` for one topic."""

    model = QuizResult
    serializer_class = QuizResultSerializer
    pagination_class: type[CursorPagination] = ByCompletion
    filterset_class = QuizResultFilter

    @extend_schema(request=QuizResultCreateSerializer, responses={201: QuizResultSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.create_through(request, quiz_result_create, body=QuizResultCreateSerializer)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        quiz_result_delete(user_id=principal(request).id, result_id=kwargs["pk"])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: QuizStatsSerializer(many=True)})
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def stats(self, request: Request) -> Response:
        """Per topic: attempts, best, average and last percent, the last attempt's time (one query)."""
        return Response(QuizStatsSerializer(quiz_stats(user_id=principal(request).id), many=True).data)
