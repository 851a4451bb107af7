"""The base of the viewsets whose rows each belong to one user: chat sessions, quiz results,
resumes, requirements, processings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Model, QuerySet
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from accounts.authentication import principal
from core.http import UUID_PATTERN
from core.ids import Id


class CallerOwnedViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """List, create, retrieve and delete the caller's own rows of `model`.

    The queryset is scoped in `get_queryset`, so isolation is structural: another user's row is
    a 404 for every action, not a check each view has to remember.
    """

    model: type[Model]
    lookup_value_regex = UUID_PATTERN

    def owned(self, user_id: Id) -> QuerySet[Any]:
        """The rows of `user_id`; a resource with its own selector (order, joins) says so here."""
        return self.model._default_manager.filter(user_id=user_id)

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):  # the schema is generated without a caller
            return self.model._default_manager.none()
        return self.owned(principal(self.request).id)

    def create_through(
        self,
        request: Request,
        service: Callable[..., Model],
        *,
        body: type[BaseSerializer[Any]],
        status_code: int = status.HTTP_201_CREATED,
    ) -> Response:
        """A create action's whole work: `body` checks the request, `service` makes the caller's
        row from the checked fields, the answer is that row in the view's `serializer_class`."""
        data = body(data=request.data)
        data.is_valid(raise_exception=True)
        row = service(user_id=principal(request).id, **data.validated_data)
        return Response(self.get_serializer_class()(row).data, status=status_code)
