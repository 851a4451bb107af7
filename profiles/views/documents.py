"""Resumes, requirements and processings: viewsets around one service call each.

Querysets are scoped to the caller in `get_queryset`; another user's object is a 404.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import principal
from core.errors import NotFound
from core.ids import Id

from ..models import Processing, Requirements, Resume
from ..selectors.documents import DocumentModel, document_get, documents_of, processings_of
from ..serializers.documents import (
    DocumentCreateSerializer,
    DocumentSerializer,
    ProcessingCreateSerializer,
    ProcessingSerializer,
)
from ..services import documents as document_services
from ..services import processings as processing_services
from ..throttles import UploadUserThrottle
from ..uploads import prepare_upload
from .owned import CallerOwnedViewSet


class _DocumentViewSet(CallerOwnedViewSet):
    model: DocumentModel
    serializer_class = DocumentSerializer

    def owned(self, user_id: Id) -> QuerySet[Any]:
        return documents_of(model=self.model, user_id=user_id)

    def get_parsers(self) -> list[Any]:
        # The API's own parsers (JSON with its limits), and multipart for the files.
        return [*super().get_parsers(), MultiPartParser()]

    def get_serializer_class(self) -> Any:
        return DocumentCreateSerializer if self.action == "create" else DocumentSerializer

    def get_throttles(self) -> list[Any]:
        # Creating is limited per user (THROTTLE_UPLOAD_USER), before the body is read.
        return [UploadUserThrottle()] if self.action == "create" else []

    @extend_schema(
        request={
            "application/json": DocumentCreateSerializer,
            "multipart/form-data": DocumentCreateSerializer,
        },
        responses={
            201: DocumentSerializer,
            413: OpenApiResponse(description="upload or text too large"),
            415: OpenApiResponse(
                description="content does not match the extension, is unreadable, or its parsing "
                "passed the CPU or memory bound (parse_limit)"
            ),
            429: OpenApiResponse(description="more uploads than THROTTLE_UPLOAD_USER allows"),
            503: OpenApiResponse(
                description="every extraction slot is busy, or the throttle's cache is down"
            ),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if request.content_type.startswith("multipart/"):
            prepare_upload(request._request)
        serializer = DocumentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        document = document_services.document_create(
            model=self.model,
            user_id=principal(request).id,
            title=data["title"],
            text=data.get("text"),
            upload=data.get("file"),
        )
        return Response(DocumentSerializer(document).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = document_get(model=self.model, user_id=principal(request).id, document_id=kwargs["pk"])
        return Response({key: value for key, value in data.items() if key != "user_id"})

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        document_services.document_delete(
            model=self.model, user_id=principal(request).id, document_id=kwargs["pk"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"])
    def file(self, request: Request, pk: str) -> FileResponse:
        """The uploaded file, to its owner only (files are never served by a public URL)."""
        document = self.get_object()
        if not document.file:
            raise NotFound("This document was not uploaded as a file.")
        return FileResponse(
            document.file.open("rb"), as_attachment=True, filename=document.file_name or document.file.name
        )


class ResumeViewSet(_DocumentViewSet):
    """The caller's resumes, newest first."""

    model = Resume


class RequirementsViewSet(_DocumentViewSet):
    """The caller's requirements, newest first; deleting one deletes its processings."""

    model = Requirements


class ProcessingFilter(filters.FilterSet):
    requirements_id = filters.UUIDFilter(field_name="requirements_id")

    class Meta:
        model = Processing
        fields = ["requirements_id"]


class ProcessingViewSet(CallerOwnedViewSet):
    """The caller's processings, newest first; `?requirements_id=` for one requirements'."""

    model = Processing
    serializer_class = ProcessingSerializer
    filterset_class = ProcessingFilter

    def owned(self, user_id: Id) -> QuerySet[Processing]:
        return processings_of(user_id=user_id)

    @extend_schema(request=ProcessingCreateSerializer, responses={202: ProcessingSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.create_through(
            request,
            processing_services.processing_start,
            body=ProcessingCreateSerializer,
            status_code=status.HTTP_202_ACCEPTED,
        )

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        processing_services.processing_delete(user_id=principal(request).id, processing_id=kwargs["pk"])
        return Response(status=status.HTTP_204_NO_CONTENT)
