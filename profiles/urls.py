"""Routes of the profile data and documents; paths as in API.md, no trailing slash needed."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from .views.chat_sessions import ChatSessionViewSet
from .views.llm_settings import LLMCatalogView, llm_settings_view
from .views.quiz_results import QuizResultViewSet

router = SimpleRouter()
router.trailing_slash = "/?"
# Profile data
router.register("chat-sessions", ChatSessionViewSet, basename="chat-session")
router.register("quiz-results", QuizResultViewSet, basename="quiz-result")

# --- Documents and processings ---
from .views.documents import ProcessingViewSet, RequirementsViewSet, ResumeViewSet  # noqa: E402

router.register("resumes", ResumeViewSet, basename="resume")
router.register("requirements", RequirementsViewSet, basename="requirements")
router.register("processings", ProcessingViewSet, basename="processing")

urlpatterns = [
    # Profile data
    # GET through the lean dispatch (accounts/hot_path_views.py): other services read it on every agent call.
    re_path(r"^profile/llm-settings/?$", llm_settings_view, name="llm-settings"),
    re_path(r"^llm/catalog/?$", LLMCatalogView.as_view(), name="llm-catalog"),
    *router.urls,
]
