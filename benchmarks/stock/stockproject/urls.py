"""djoser's user endpoints and its SimpleJWT endpoints, plus the floor.

POST /auth/users/        register  {username, email, password}
POST /auth/jwt/create/   login     {username, password} -> {access, refresh}
GET  /auth/users/me/     current user (Authorization: Bearer <access>)
GET  /floor/             a bare Django JSON view: no auth, no database
"""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path


def floor(request: HttpRequest) -> JsonResponse:
    """The most a Django process can serve here: no auth, no database."""
    return JsonResponse({"id": "00000000-0000-0000-0000-000000000000", "username": "floor"})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("floor/", floor),
    path("auth/", include("djoser.urls")),
    path("auth/", include("djoser.urls.jwt")),
]
