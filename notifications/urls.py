from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.trailing_slash = "/?"  # API.md's paths have no trailing slash; one is tolerated
router.register("notifications", views.NotificationViewSet, basename="notification")

urlpatterns = router.urls
