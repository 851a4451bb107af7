from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import principal
from core.http import UUID_PATTERN
from core.pagination import PageSizeCursorPagination

from ..models import QuizResult
from ..selectors.quiz_results import quiz_stats
from ..serializers.quiz_results import QuizResultCreateSerializer, QuizResultSerializer, QuizStatsSerializer
from ..services.quiz_results import quiz_result_create, quiz_result_delete


class ByCompletion(PageSizeCursorPagination):
    ordering = ("-completed_at", "-created_at")  # type: ignore[assignment]  # DRF takes a tuple too


class QuizResultFilter(filters.FilterSet):
    topic = filters.CharFilter(help_text="Only the results of this topic.")

    class Meta:
        model = QuizResult
        fields = ["topic"]


class QuizResultViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's quiz results, latest first; `?topic=` for one topic."""

    serializer_class = QuizResultSerializer
    pagination_class: type[CursorPagination] = ByCompletion
    filterset_class = QuizResultFilter
    lookup_value_regex = UUID_PATTERN

    def get_queryset(self) -> QuerySet[QuizResult]:
        if getattr(self, "swagger_fake_view", False):
            return QuizResult.objects.none()
        return QuizResult.objects.filter(user_id=principal(self.request).id)

    @extend_schema(request=QuizResultCreateSerializer, responses={201: QuizResultSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = QuizResultCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = quiz_result_create(user_id=principal(request).id, **data.validated_data)
        return Response(QuizResultSerializer(result).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        quiz_result_delete(user_id=principal(request).id, result_id=kwargs["pk"])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: QuizStatsSerializer(many=True)})
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def stats(self, request: Request) -> Response:
        """Per topic: attempts, best, average and last percent, the last attempt's time (one query)."""
        return Response(QuizStatsSerializer(quiz_stats(user_id=principal(request).id), many=True).data)
