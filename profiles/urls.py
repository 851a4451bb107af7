"""Routes of the profile data and documents; paths as in API.md, no trailing slash needed."""

from rest_framework.routers import SimpleRouter

router = SimpleRouter()
router.trailing_slash = "/?"

urlpatterns = [*router.urls]
