"""Linked identities in the back-office: shown on the user's page, unlinked through the service.

social-django's own admin for `UserSocialAuth` would edit and delete the rows
directly (no unlink guard, no audit): it is replaced by a read-only one. Its
admins for `Nonce` and `Association` (the redirect flow's single-use state,
purged by `accounts.tasks.purge_social_state`) would let a hand-made or deleted
row replay or break a login: they are not shown at all.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from social_django.models import Association, Nonce, UserSocialAuth

from core.admin import TickToActFormSet, TickToActInline, ViewOnlyAdminMixin, tick_form
from core.errors import ServiceError

from . import services
from .backends import PROVIDER_OF_BACKEND

IdentityUnlinkForm = tick_form(UserSocialAuth, "unlink", "Unlink this identity on save.")


class IdentityFormSet(TickToActFormSet):
    """A ticked identity is unlinked by `identity_unlink`."""

    tick = "unlink"

    def act(self, instance: Any) -> None:
        provider = PROVIDER_OF_BACKEND.get(instance.provider, instance.provider)
        try:
            services.identity_unlink(
                user_id=instance.user_id, provider=provider, actor_id=self.request.user.pk
            )
        except ServiceError as exc:
            messages.error(self.request, f"{provider} not unlinked: {exc.detail}")
        else:
            messages.success(self.request, f"{provider} unlinked.")


class IdentityInline(TickToActInline):
    """The user's linked providers; tick "unlink" and save to remove one."""

    model = UserSocialAuth
    form = IdentityUnlinkForm
    formset = IdentityFormSet
    fields = ("provider", "uid", "created", "unlink")
    readonly_fields = ("provider", "uid", "created")
    verbose_name = "linked identity"
    verbose_name_plural = "linked identities"


for _model in (UserSocialAuth, Nonce, Association):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(UserSocialAuth)
class IdentityAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    """Every linked identity; read-only, unlinked with the action (same guard and audit as the API)."""

    list_display = ["user", "provider", "uid", "created"]
    list_filter = ["provider"]
    search_fields = ["user__username", "user__email", "uid"]
    list_select_related = ["user"]
    fields = ["user", "provider", "uid", "created", "modified"]
    readonly_fields = ["user", "provider", "uid", "created", "modified"]
    actions = ["unlink_selected"]

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
