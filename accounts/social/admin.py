"""Linked identities in the back-office: shown on the user's page, unlinked through the service.

social-django's own admin for `UserSocialAuth` would edit and delete the rows
directly (no unlink guard, no audit): it is replaced by a read-only one. Its
admins for `Nonce` and `Association` (the redirect flow's single-use state,
purged by `accounts.tasks.purge_social_state`) would let a hand-made or deleted
row replay or break a login: they are not shown at all.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from social_django.models import Association, Nonce, UserSocialAuth

from core.errors import ServiceError

from . import services
from .backends import PROVIDER_OF_BACKEND


class IdentityUnlinkForm(forms.ModelForm):
    unlink = forms.BooleanField(required=False, help_text="Unlink this identity on save.")

    class Meta:
        model = UserSocialAuth
        fields: list[str] = []


class IdentityFormSet(forms.BaseInlineFormSet):
    """Saves nothing itself: a ticked identity is unlinked by `identity_unlink`."""

    request: HttpRequest

    def save(self, commit: bool = True) -> list[Any]:
        self.new_objects, self.changed_objects, self.deleted_objects = [], [], []
        for form in self.forms:
            identity = form.instance
            if not form.cleaned_data.get("unlink") or identity.pk is None:
                continue
            provider = PROVIDER_OF_BACKEND.get(identity.provider, identity.provider)
            try:
                services.identity_unlink(
                    user_id=identity.user_id, provider=provider, actor_id=self.request.user.pk
                )
            except ServiceError as exc:
                messages.error(self.request, f"{provider} not unlinked: {exc.detail}")
            else:
                messages.success(self.request, f"{provider} unlinked.")
        return []


class IdentityInline(admin.TabularInline):
    """The user's linked providers; tick "unlink" and save to remove one."""

    model = UserSocialAuth
    form = IdentityUnlinkForm
    formset = IdentityFormSet
    extra = 0
    can_delete = False
    fields = ("provider", "uid", "created", "unlink")
    readonly_fields = ("provider", "uid", "created")
    verbose_name = "linked identity"
    verbose_name_plural = "linked identities"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        formset.request = request  # type: ignore[attr-defined]  # a class made for this request
        return formset


for _model in (UserSocialAuth, Nonce, Association):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(UserSocialAuth)
class IdentityAdmin(admin.ModelAdmin):
    """Every linked identity; read-only, unlinked with the action (same guard and audit as the API)."""

    list_display = ["user", "provider", "uid", "created"]
    list_filter = ["provider"]
    search_fields = ["user__username", "user__email", "uid"]
    list_select_related = ["user"]
    fields = ["user", "provider", "uid", "created", "modified"]
    readonly_fields = ["user", "provider", "uid", "created", "modified"]
    actions = ["unlink_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Unlink the selected identities")
    def unlink_selected(self, request: HttpRequest, queryset: QuerySet[UserSocialAuth]) -> None:
        done, refused = 0, []
        for identity in queryset:
            provider = PROVIDER_OF_BACKEND.get(identity.provider, identity.provider)
            try:
                services.identity_unlink(
                    user_id=identity.user_id, provider=provider, actor_id=request.user.pk
                )
                done += 1
            except ServiceError as exc:
                refused.append(f"{identity.user}: {exc.detail}")
        self.message_user(request, f"{done} identity(ies) unlinked.", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not unlinked: " + "; ".join(refused), messages.WARNING)
