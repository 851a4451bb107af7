"""The project's URLs with the lean endpoints (`/users/me`, `/auth/verify`, `/profile/llm-settings`)
served by their plain DRF views.

`test_hot_path_views.py` and `profiles/tests/test_llm_settings_lean.py` answer each request through
both URLconfs and compare.
"""

from django.urls import include, path, re_path

from accounts import hot_path_views, views
from config.urls import urlpatterns as project_urlpatterns
from profiles.views.llm_settings import LLMSettingsView

urlpatterns = [
    re_path(r"^api/v1/users/me/?$", views.MeViewSet.as_view(hot_path_views.ME_ACTIONS), name="me"),
    re_path(r"^api/v1/auth/verify/?$", views.VerifyView.as_view(), name="verify"),
    re_path(r"^api/v1/profile/llm-settings/?$", LLMSettingsView.as_view(), name="llm-settings"),
    path("", include(project_urlpatterns)),
]
