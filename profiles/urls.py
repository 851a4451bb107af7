"""Routes of the profile data and documents; paths as in API.md, no trailing slash needed."""

from rest_framework.routers import SimpleRouter

router = SimpleRouter()
router.trailing_slash = "/?"

# --- Documents and processings ---
from .views.documents import ProcessingViewSet, RequirementsViewSet, ResumeViewSet  # noqa: E402

router.register("resumes", ResumeViewSet, basename="resume")
router.register("requirements", RequirementsViewSet, basename="requirements")
router.register("processings", ProcessingViewSet, basename="processing")

urlpatterns = [*router.urls]
