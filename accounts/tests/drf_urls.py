"""The project's URLs with `/users/me` and `/auth/verify` served by their plain DRF views.

`test_hot_path_views.py` answers each request through both URLconfs and compares.
"""

from django.urls import include, path, re_path

from accounts import hot_path_views, views
from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    re_path(r"^api/v1/users/me/?$", views.MeViewSet.as_view(hot_path_views.ME_ACTIONS), name="me"),
    re_path(r"^api/v1/auth/verify/?$", views.VerifyView.as_view(), name="verify"),
    path("", include(project_urlpatterns)),
]
