from __future__ import annotations

from rest_framework import serializers

from core.serializers import ModelSerializer, Serializer

from ..models import QUIZ_ANSWERS_MAX_BYTES, QuizResult
from .fields import FiniteFloatField, LimitedJSONField


class QuizResultSerializer(ModelSerializer):
    percent = serializers.FloatField(read_only=True)

    class Meta:
        model = QuizResult
        fields = ["id", "quiz_id", "topic", "score", "max_score", "percent", "answers", "completed_at"]
        read_only_fields = fields


class QuizResultCreateSerializer(Serializer):
    quiz_id = serializers.CharField(max_length=255)
    topic = serializers.CharField(max_length=255)
    score = FiniteFloatField(min_value=0.0, max_value=1e12)
    max_score = FiniteFloatField(max_value=1e12)
    answers = LimitedJSONField(max_bytes=QUIZ_ANSWERS_MAX_BYTES, default=dict)
    completed_at = serializers.DateTimeField(required=False)


class QuizStatsSerializer(Serializer):
    topic = serializers.CharField()
    attempts = serializers.IntegerField()
    best_percent = serializers.FloatField()
    average_percent = serializers.FloatField()
    last_percent = serializers.FloatField(help_text="The percent of the last attempt.")
    last_attempt_at = serializers.DateTimeField()
