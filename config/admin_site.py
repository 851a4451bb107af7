"""The Django admin site, with what an administrator looks for first on its index.

The model admins' base (`core.admin.ServiceModelAdmin`) is plumbing the apps share; this site is
the composition root's, and may read the apps (the pending role requests on its index)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.template.response import TemplateResponse


class ServiceAdminSite(admin.AdminSite):
    site_header = "User service"
    site_title = "User service admin"
    index_title = "Administration"

    @property
    def site_url(self) -> str | None:  # type: ignore[override]  # "View site": the docs, the frontend or none
        from .home import home_url

        return home_url()

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        from accounts.models import RoleRequest

        pending = RoleRequest.objects.filter(status=RoleRequest.Status.PENDING).count()
        context = {"pending_role_requests": pending, **(extra_context or {})}
        return super().index(request, context)  # type: ignore[return-value]


class ServiceAdminConfig(AdminConfig):
    default_site = "config.admin_site.ServiceAdminSite"
