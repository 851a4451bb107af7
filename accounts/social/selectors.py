"""Reads of linked identities."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from social_django.models import UserSocialAuth

from .backends import PROVIDERS


def identities_of(*, user_id: Any) -> QuerySet[UserSocialAuth]:
    """The user's identities of the providers this service knows."""
    return UserSocialAuth.objects.filter(user_id=user_id, provider__in=PROVIDERS.values())
