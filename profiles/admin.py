"""The back-office for profile data and documents.

Nothing is added or edited here by hand. What may be deleted goes through the
service the API's DELETE calls, from the delete page and from the bulk action
alike (`delete_model`, `delete_queryset`), so the effects are the API's: the
cached copy dropped, the event emitted, the processings taken along.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from accounts.admin import user_inlines_add
from core.admin import ReadOnlyAdminMixin, ServiceModelAdmin

from .models import ChatSession, LLMSetting, Processing, QuizResult, Requirements, Resume
from .services.chat_sessions import chat_session_delete
from .services.documents import document_delete
from .services.processings import processing_delete
from .services.quiz_results import quiz_result_delete

# --- Profile data -------------------------------------------------------------------------------
# LLM settings are the user's own choice and pass through the service (catalogue check,
# event, cache): the admin looks, it does not edit them. Chat sessions and quiz results
# may be deleted, through the API's services, never added or edited by hand.


class DeletedThroughServiceAdmin(ServiceModelAdmin):
    """The delete page and the bulk action alike delete through the API's service, one row at a
    time (`row_delete`), the bulk action in one transaction: all the rows or none."""

    def row_delete(self, obj: Any) -> None:
        raise NotImplementedError

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.row_delete(obj)

    @transaction.atomic
    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.row_delete(obj)


@admin.register(LLMSetting)
class LLMSettingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["user", "purpose", "provider", "model", "temperature", "max_tokens", "updated_at"]
    list_filter = ["purpose", "provider", "model"]
    search_fields = ["user__username", "user__email", "model"]
    list_select_related = ["user"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a deleted row would outlive itself in the cache: users change settings via the API


@admin.register(ChatSession)
class ChatSessionAdmin(ReadOnlyAdminMixin, DeletedThroughServiceAdmin):
    list_display = ["title", "external_id", "user", "last_activity_at", "created_at"]
    list_filter = [("last_activity_at", admin.DateFieldListFilter)]
    search_fields = ["user__username", "user__email", "external_id", "title"]
    list_select_related = ["user"]
    date_hierarchy = "last_activity_at"

    def row_delete(self, obj: ChatSession) -> None:
        chat_session_delete(user_id=obj.user_id, session_id=obj.pk)


@admin.register(QuizResult)
class QuizResultAdmin(ReadOnlyAdminMixin, DeletedThroughServiceAdmin):
    list_display = ["completed_at", "user", "topic", "quiz_id", "score", "max_score", "percent"]
    list_filter = ["topic", ("completed_at", admin.DateFieldListFilter)]
    search_fields = ["user__username", "user__email", "topic", "quiz_id"]
    list_select_related = ["user"]
    date_hierarchy = "completed_at"

    def row_delete(self, obj: QuizResult) -> None:
        quiz_result_delete(user_id=obj.user_id, result_id=obj.pk)


class LatestOnlyFormSet(BaseInlineFormSet):
    """An inline of the latest rows only: a user's page must not list thousands of results."""

    limit = 20

    def get_queryset(self) -> QuerySet[Any]:
        if not hasattr(self, "_latest"):
            self._latest = super().get_queryset()[: self.limit]
        return self._latest


class ProfileInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Shown on the user's page, read-only."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Nothing of these is submitted, so they take no part in the user form's POST: a
        # save of the user page needs no management form for them.
        return request.method != "POST" and super().has_view_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LLMSettingInline(ProfileInline):
    model = LLMSetting
    fields = readonly_fields = ("purpose", "provider", "model", "temperature", "max_tokens", "updated_at")
    show_change_link = False
    verbose_name_plural = "LLM settings (purposes not listed use the catalogue's default)"


class ChatSessionInline(ProfileInline):
    model = ChatSession
    fields = readonly_fields = ("title", "external_id", "last_activity_at", "created_at")
    ordering = ("-last_activity_at",)


class QuizResultInline(ProfileInline):
    model = QuizResult
    formset = LatestOnlyFormSet
    fields = readonly_fields = ("completed_at", "topic", "quiz_id", "score", "max_score", "percent")
    ordering = ("-completed_at",)
    verbose_name_plural = f"Quiz results (the latest {LatestOnlyFormSet.limit})"


#: Shown on the user's page in the accounts admin.
USER_INLINES = [LLMSettingInline, ChatSessionInline, QuizResultInline]
user_inlines_add(*USER_INLINES)  # on the user's page, after its sessions and identities

# --- Documents and processings ------------------------------------------------------------------


class _DocumentAdmin(ReadOnlyAdminMixin, DeletedThroughServiceAdmin):
    """Read-only: documents are created over the API (checks, events). A delete here is the API's
    `document_delete`: the cached text dropped, `delete_resume` / `delete_requirements` emitted,
    the processings taken along (their ids in the event), the file removed after commit."""

    list_display = ["id", "user", "title", "source", "file_size", "created_at"]
    list_filter = ["source"]
    search_fields = ["id", "title", "user__username", "user__email"]
    list_select_related = ["user"]
    readonly_fields = ["id", "user", "title", "text", "source", "file_name", "file_size", "created_at"]
    exclude = ["file"]

    def row_delete(self, obj: Resume | Requirements) -> None:
        document_delete(model=type(obj), user_id=obj.user_id, document_id=obj.pk)


admin.site.register(Resume, _DocumentAdmin)
admin.site.register(Requirements, _DocumentAdmin)


@admin.register(Processing)
class ProcessingAdmin(ReadOnlyAdminMixin, DeletedThroughServiceAdmin):
    """Read-only; a delete here is the API's `processing_delete` (`delete_processing` emitted)."""

    list_display = ["id", "user", "status", "score", "created_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["id", "user__username", "user__email"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in Processing._meta.fields]

    def row_delete(self, obj: Processing) -> None:
        processing_delete(user_id=obj.user_id, processing_id=obj.pk)
