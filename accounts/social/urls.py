"""Routes of social login, included by `accounts.urls`."""

from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.trailing_slash = "/?"
router.register("users/me/identities", views.IdentityViewSet, basename="identity")

redirect_flow = [
    path("login/<str:backend>/", views.begin, name="begin"),
    path("complete/<str:backend>/", views.complete, name="complete"),
]

urlpatterns = [
    re_path(r"^auth/social/yandex/?$", views.YandexLoginView.as_view(), name="social-yandex"),
    re_path(r"^auth/social/telegram/?$", views.TelegramLoginView.as_view(), name="social-telegram"),
    path("auth/social/", include((redirect_flow, "social"))),
    *router.urls,
]
