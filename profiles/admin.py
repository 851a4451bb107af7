"""The back-office for profile data and documents."""


# --- Documents and processings ------------------------------------------------------------------

from django.contrib import admin

from .models import Processing, Requirements, Resume


class _DocumentAdmin(admin.ModelAdmin):
    """Read-only: documents are created over the API (checks, events); deleting one here takes its
    file along (post_delete) and its processings (cascade)."""

    list_display = ["id", "user", "title", "source", "file_size", "created_at"]
    list_filter = ["source"]
    search_fields = ["id", "title", "user__username", "user__email"]
    list_select_related = ["user"]
    readonly_fields = ["id", "user", "title", "text", "source", "file_name", "file_size", "created_at"]
    exclude = ["file"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


admin.site.register(Resume, _DocumentAdmin)
admin.site.register(Requirements, _DocumentAdmin)


@admin.register(Processing)
class ProcessingAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "status", "score", "created_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["id", "user__username", "user__email"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in Processing._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
