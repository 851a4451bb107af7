from typing import Any

from django.urls import URLPattern, re_path
from rest_framework.routers import SimpleRouter

from . import hot_path_views, mfa_views, views
from .social import urls as social_urls

router = SimpleRouter()
# API.md's paths have no trailing slash; one is tolerated rather than a 404.
router.trailing_slash = "/?"
router.register("auth/sessions", views.SessionViewSet, basename="session")
router.register("users", views.UserViewSet, basename="user")
router.register("role-requests", views.RoleRequestViewSet, basename="role-request")


def endpoint(route: str, view: Any, name: str) -> URLPattern:
    return re_path(rf"^{route}/?$", view, name=name)


#: The caller's own account: one viewset, two paths (ahead of the router's `users/{id}`);
#: `users/me` through the lean dispatch (accounts/hot_path_views.py, `hot_path_views.me_view`).
me_export = views.MeViewSet.as_view({"get": "export"})

urlpatterns = [
    endpoint("auth/register", views.RegisterView.as_view(), "register"),
    endpoint("auth/login", views.LoginView.as_view(), "login"),
    endpoint("auth/refresh", views.RefreshView.as_view(), "refresh"),
    endpoint("auth/logout", views.LogoutView.as_view(), "logout"),
    endpoint("auth/logout-all", views.LogoutAllView.as_view(), "logout-all"),
    endpoint("auth/revoke", views.RevokeView.as_view(), "revoke"),
    # The hottest reads: DRF's answer without DRF's request cycle (accounts/hot_path_views.py).
    endpoint("auth/verify", hot_path_views.verify_view, "verify"),
    endpoint("users/me", hot_path_views.me_view, "me"),
    endpoint("users/me/export", me_export, "me-export"),
    endpoint("roles", views.RoleListView.as_view(), "roles"),
    endpoint("auth/restore", views.RestoreView.as_view(), "restore"),
    endpoint("auth/password/change", views.PasswordChangeView.as_view(), "password-change"),
    endpoint("auth/password/set", views.PasswordFirstSetView.as_view(), "password-set"),
    endpoint("auth/email/verify", views.EmailVerifyView.as_view(), "email-verify"),
    endpoint("auth/email/verify/resend", views.EmailVerifyResendView.as_view(), "email-verify-resend"),
    endpoint("auth/password/reset", views.PasswordResetView.as_view(), "password-reset"),
    endpoint(
        "auth/password/reset/confirm", views.PasswordResetConfirmView.as_view(), "password-reset-confirm"
    ),
    endpoint("auth/mfa", mfa_views.MFAStatusView.as_view(), "mfa"),
    endpoint("auth/mfa/totp", mfa_views.TOTPView.as_view(), "mfa-totp"),
    endpoint("auth/mfa/totp/confirm", mfa_views.TOTPConfirmView.as_view(), "mfa-totp-confirm"),
    endpoint("auth/mfa/recovery-codes", mfa_views.RecoveryCodesView.as_view(), "mfa-recovery-codes"),
    endpoint("auth/mfa/verify", mfa_views.MFAVerifyView.as_view(), "mfa-verify"),
    *social_urls.urlpatterns,
    *router.urls,
]
