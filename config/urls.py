from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.views import jwks_view, openid_configuration_view
from core import health, metrics_view
from notifications.asyncapi import asyncapi_view

from . import home, schema  # noqa: F401  (schema: registers the OpenAPI auth scheme of accounts' tokens)

urlpatterns = [
    path("", home.home, name="home"),
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", include("notifications.urls")),
    path("api/v1/", include("profiles.urls")),
    path(".well-known/jwks.json", jwks_view, name="jwks"),
    path(".well-known/openid-configuration", openid_configuration_view, name="openid-configuration"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics_view.metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/asyncapi.json", asyncapi_view, name="asyncapi"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
]

handler400 = "core.exceptions.bad_request"
handler403 = "core.exceptions.permission_denied"
handler404 = "core.exceptions.not_found"
handler500 = "core.exceptions.server_error"
