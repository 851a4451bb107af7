"""The one way the admin's pages answer a service's refusal: `ServiceModelAdmin`, the base of every
model admin whose saves and deletes call services (`accounts/tests/test_admin_doors.py` checks
that they do)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.db import router, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from .errors import ServiceError


def delete_selected_at_once(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]
) -> HttpResponse | None:
    """Django's "Delete selected" action, all or nothing.

    The rows go through `delete_queryset` (the service, row by row) in one
    transaction, with the admin's log entries: a refusal of any row rolls
    every row back and is shown as the page's error.
    """
    try:
        with transaction.atomic(using=router.db_for_write(modeladmin.model)):
            return delete_selected(modeladmin, request, queryset)  # type: ignore[no-any-return]
    except ServiceError as exc:
        modeladmin.message_user(request, f"Nothing was deleted: {exc.detail}", messages.ERROR)
        return None


class ServiceModelAdmin(admin.ModelAdmin):
    """A model admin whose saves and deletes call services: a refusal is a message, not a 500.

    A `ServiceError` raised by the service (say `last_admin`) escapes the
    admin view's transaction, so nothing the view did is kept; the page then
    shows the error and goes back to where the administrator was.
    """

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as exc:
            self.message_user(request, f"Nothing was saved: {exc.detail}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except ServiceError as exc:
            self.message_user(request, f"Nothing was deleted: {exc.detail}", messages.ERROR)
            opts = self.model._meta
            return HttpResponseRedirect(
                reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[object_id])
            )

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions: dict[str, Any] = dict(super().get_actions(request))
        if "delete_selected" in actions:
            _, name, description = actions["delete_selected"]
            actions["delete_selected"] = (delete_selected_at_once, name, description)
        return actions


def tick_form(model: type[Any], tick: str, help_text: str) -> type[forms.ModelForm]:  # type: ignore[type-arg]
    """The form of one row of a `TickToActInline`: no field of the model, one tick box."""
    meta = type("Meta", (), {"model": model, "fields": []})
    attrs = {"Meta": meta, tick: forms.BooleanField(required=False, help_text=help_text)}
    return type(f"{model.__name__}TickForm", (forms.ModelForm,), attrs)


class TickToActFormSet(forms.BaseInlineFormSet):
    """An inline's rows save nothing themselves: each row whose tick box (`tick`) is on goes to
    `act`, which calls a service (revoke a session, unlink an identity), as the API would."""

    request: HttpRequest
    tick = ""

    def act(self, instance: Any) -> None:
        raise NotImplementedError

    def save(self, commit: bool = True) -> list[Any]:
        self.new_objects, self.changed_objects, self.deleted_objects = [], [], []
        for form in self.forms:
            if form.cleaned_data.get(self.tick) and form.instance.pk is not None:
                self.act(form.instance)
        return []


class TickToActInline(admin.TabularInline):
    """A read-only list of related rows with a tick box per row (`TickToActFormSet`): no adding,
    no deleting, and the formset knows the request (its actor, its messages)."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        formset.request = request  # type: ignore[attr-defined]  # a class made for this request
        return formset


class ReadOnlyAdminMixin:
    """Nothing added or changed by hand (a model admin's or an inline's pages alike)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ViewOnlyAdminMixin(ReadOnlyAdminMixin):
    """Nor deleted by hand: a record (an audit row, a linked identity) changes through its services."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
