"""The one domain error type. Services raise it; `core.exceptions` shapes it as JSON.

Kept apart from the DRF exception handler so that services import nothing of DRF's views.
"""

from __future__ import annotations

from rest_framework import status


class ServiceError(Exception):
    """A business rule said no. Services raise it; the handler below shapes it."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code: str = "invalid"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers or {}


class NotFound(ServiceError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class AuthenticationFailed(ServiceError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "authentication_failed"
