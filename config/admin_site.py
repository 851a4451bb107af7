"""The Django admin site, with what an administrator looks for first on its index.

The model admins' base (`core.admin.ServiceModelAdmin`) is plumbing the apps share; this site is
the composition root's, and may read the apps (the pending role requests on its index)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver


class ServiceAdminSite(admin.AdminSite):
    site_header = "User service"
    site_title = "User service admin"
    index_title = "Administration"

    @property
    def site_url(self) -> str | None:  # type: ignore[override]  # "View site": the docs, the frontend or none
        from .home import home_url

        return home_url()

    # --- the second factor (accounts/admin_mfa.py): no page opens before it is passed ---------------

    def has_permission(self, request: HttpRequest) -> bool:
        from accounts.admin_mfa import admin_mfa_passed

        return super().has_permission(request) and admin_mfa_passed(request)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        from accounts.admin_mfa import admin_login_pending_redirect, admin_login_started

        pending = admin_login_pending_redirect(request)
        if pending is not None:
            return pending
        response = super().login(request, extra_context)
        if request.method == "POST" and request.user.is_authenticated and response.status_code == 302:
            return admin_login_started(request, response)  # the password was right: now the code
        return response

    def get_urls(self) -> list[URLResolver | URLPattern]:
        from accounts.admin_mfa import admin_mfa_urls

        return [*admin_mfa_urls(self), *super().get_urls()]

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        from accounts.models import RoleRequest

        pending = RoleRequest.objects.filter(status=RoleRequest.Status.PENDING).count()
        context = {"pending_role_requests": pending, **(extra_context or {})}
        return super().index(request, context)  # type: ignore[return-value]


class ServiceAdminConfig(AdminConfig):
    default_site = "config.admin_site.ServiceAdminSite"
