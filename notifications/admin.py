"""Back-office for notifications, broadcasts and the event outbox.

Notifications are read here, and deleted through the API's `notification_delete`
(the unread count forgets them); broadcasts are sent through `broadcast_create`
and then kept as the record of what was sent; the outbox is only looked at.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.admin import ServiceModelAdmin
from core.errors import ServiceError

from . import services
from .models import Broadcast, Notification, OutboxEvent


class BroadcastForm(forms.Form):
    title = forms.CharField(max_length=200)
    body = forms.CharField(widget=forms.Textarea, required=False)
    role = forms.ModelChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        to_field_name="name",
        help_text="Leave empty (and no user ids) to notify everyone.",
    )
    user_ids = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="User ids, one per line or comma-separated.",
    )

    def clean_user_ids(self) -> list[str]:
        import uuid

        raw = self.cleaned_data["user_ids"].replace(",", "\n")
        ids = [line.strip() for line in raw.splitlines() if line.strip()]
        try:
            return [str(uuid.UUID(value)) for value in ids]
        except ValueError:
            raise forms.ValidationError("Each line must be a user id (UUID).") from None


@admin.register(Notification)
class NotificationAdmin(ServiceModelAdmin):
    list_display = ["created_at", "user", "kind", "title", "read_at", "emailed_at"]
    list_filter = ["kind", ("read_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "user__email", "title"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at", "read_at", "emailed_at"]
    change_list_template = "admin/notifications/notification/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # users are notified by the services (or a broadcast), never by hand-made rows

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # what a user was told stays as it was told

    def delete_model(self, request: HttpRequest, obj: Notification) -> None:
        services.notification_delete(user_id=obj.user_id, notification_id=obj.pk)

    @transaction.atomic
    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        for notification in queryset:
            services.notification_delete(user_id=notification.user_id, notification_id=notification.pk)

    def get_urls(self) -> list[Any]:
        return [
            path(
                "broadcast/", self.admin_site.admin_view(self.broadcast_view), name="notifications_broadcast"
            ),
            *super().get_urls(),
        ]

    def broadcast_view(self, request: HttpRequest) -> HttpResponse:
        """The "send broadcast" form: the same service as `POST /notifications/broadcast`."""
        if not request.user.has_perm("notifications.add_broadcast"):
            return HttpResponseRedirect(reverse("admin:index"))
        form = BroadcastForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            role = form.cleaned_data["role"]
            try:
                services.broadcast_create(
                    title=form.cleaned_data["title"],
                    body=form.cleaned_data["body"],
                    role=role.name if role else "",
                    user_ids=form.cleaned_data["user_ids"],
                    created_by=request.user.pk,
                )
            except ServiceError as exc:
                form.add_error(None, exc.detail)
            else:
                self.message_user(request, "Broadcast queued.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:notifications_broadcast_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Send a broadcast",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/notifications/broadcast_form.html", context)


@admin.register(Broadcast)
class BroadcastAdmin(admin.ModelAdmin):
    list_display = ["created_at", "title", "role", "recipients", "finished_at", "created_by"]
    readonly_fields = [
        "title",
        "body",
        "role",
        "user_ids",
        "created_by",
        "created_at",
        "recipients",
        "finished_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # sent from the Notifications page, through the service

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of what was sent to whom; the notifications it made stay either way


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    """Read-only view of the outbox: what waits, what failed and why."""

    list_display = ["created_at", "key", "topic", "published_at", "attempts", "last_error"]
    list_filter = ["key", "topic", ("published_at", admin.EmptyFieldListFilter)]
    search_fields = ["id", "key"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a pending event deleted is an event other services never hear of
