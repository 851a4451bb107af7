"""The back-office for accounts. Every change goes through `accounts.services`,
so an edit here has the same effects as the API (sessions, cache, staff flag)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from config.errors import ServiceError
from profiles.admin import USER_INLINES as PROFILE_INLINES

from . import selectors, services
from .models import AuditEvent, AuthSession, LoginLockout, Role, RoleRequest, User
from .social.admin import IdentityInline


class LockedFilter(admin.SimpleListFilter):
    title = "locked out"
    parameter_name = "locked"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Locked out now")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            locked = LoginLockout.objects.filter(locked_until__gt=timezone.now(), user__isnull=False)
            return queryset.filter(id__in=locked.values("user_id"))
        return queryset


class SessionRevokeForm(forms.ModelForm):
    revoke = forms.BooleanField(required=False, help_text="Revoke this session on save.")

    class Meta:
        model = AuthSession
        fields: list[str] = []


class AuthSessionInline(admin.TabularInline):
    """The user's sessions; tick "revoke" and save to end one."""

    model = AuthSession
    form = SessionRevokeForm
    extra = 0
    can_delete = False
    fields = ("link", "created_at", "last_used_at", "expires_at", "ip", "user_agent", "revoked_at", "revoke")
    readonly_fields = ("link", "created_at", "last_used_at", "expires_at", "ip", "user_agent", "revoked_at")
    ordering = ("-last_used_at",)

    @admin.display(description="Session")
    def link(self, obj: AuthSession) -> str:
        url = reverse("admin:accounts_authsession_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, str(obj.pk)[:8])

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ServiceUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"


class ServiceUserCreationForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email", "full_name")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = ServiceUserChangeForm
    add_form = ServiceUserCreationForm
    list_display = ["username", "email", "full_name", "role_names", "is_active", "is_deleted", "created_at"]
    list_filter = [
        "groups",
        "is_active",
        "is_staff",
        "is_superuser",
        ("deleted_at", admin.EmptyFieldListFilter),
        LockedFilter,
    ]
    search_fields = ["username", "email", "full_name"]
    ordering = ["-created_at"]
    readonly_fields = ["id", "created_at", "updated_at", "deleted_at", "last_login", "related"]
    filter_horizontal = ["groups"]
    fieldsets = (
        (None, {"fields": ("id", "username", "email", "full_name", "password")}),
        ("Access", {"fields": ("is_active", "groups", "is_superuser")}),
        ("Dates", {"fields": ("created_at", "updated_at", "last_login", "deleted_at")}),
        ("Related", {"fields": ("related",)}),
    )
    add_fieldsets = (
        (
            None,
            {"classes": ("wide",), "fields": ("username", "email", "full_name", "password1", "password2")},
        ),
    )
    inlines = [AuthSessionInline, IdentityInline, *PROFILE_INLINES]
    actions = ["revoke_all_sessions", "restore_users", "unlock_users"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="Roles")
    def role_names(self, obj: User) -> str:
        return ", ".join(obj.roles)

    @admin.display(description="Deleted", boolean=True)
    def is_deleted(self, obj: User) -> bool:
        return obj.deleted_at is not None

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        was_active = form.initial.get("is_active", True) if change else True
        super().save_model(request, obj, form, change)
        if change and was_active and not obj.is_active:
            services.user_set_active(user=obj, is_active=False, actor_id=request.user.pk)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not AuthSession:
            super().save_formset(request, form, formset, change)
            return
        # Sessions are never edited here, only revoked, through the same service as the API.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for session_form in formset.forms:
            session = session_form.instance
            if session_form.cleaned_data.get("revoke") and session.pk and session.revoked_at is None:
                services.session_revoke(
                    session_id=session.pk, user_id=session.user_id, reason="admin", actor_id=request.user.pk
                )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Roles are set by the service, not by the form's m2m save, so that the
        # change is audited, emitted, keeps `is_staff` in step and refreshes the cache.
        groups = form.cleaned_data.pop("groups", None)
        super().save_related(request, form, formsets, change)
        roles = [group.name for group in groups] if groups else ["user"]
        services.user_set_roles(user=form.instance, roles=roles, actor_id=request.user.pk)

    @admin.display(description="Related")
    def related(self, obj: User) -> str:
        audit = reverse("admin:accounts_auditevent_changelist") + f"?user__id__exact={obj.pk}"
        notes = reverse("admin:notifications_notification_changelist") + f"?user__id__exact={obj.pk}"
        requests = reverse("admin:accounts_rolerequest_changelist") + f"?user__id__exact={obj.pk}"
        return format_html(
            '<a href="{}">Security events</a> · <a href="{}">Notifications</a> · <a href="{}">Role requests</a>',
            audit,
            notes,
            requests,
        )

    @admin.action(description="Restore the selected deleted users")
    def restore_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        restored, refused = 0, []
        for user in queryset.filter(deleted_at__isnull=False):
            try:
                services.user_restore(user_id=user.id, actor_id=request.user.pk)
                restored += 1
            except ServiceError as exc:
                refused.append(f"{user.username}: {exc.detail}")
        self.message_user(request, f"{restored} user(s) restored.", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not restored: " + "; ".join(refused), messages.WARNING)

    @admin.action(description="Unlock the selected users (lift a login lockout)")
    def unlock_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        count = sum(services.lockout_unlock_user(user_id=u.id, actor_id=request.user.pk) for u in queryset)
        self.message_user(request, f"{count} user(s) unlocked.", messages.SUCCESS)

    @admin.action(description="Revoke all sessions of the selected users")
    def revoke_all_sessions(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        total = sum(
            services.sessions_revoke_all(user_id=user.id, reason="admin", actor_id=request.user.pk)
            for user in queryset
        )
        self.message_user(request, f"{total} session(s) revoked.", messages.SUCCESS)


@admin.register(AuthSession)
class AuthSessionAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "created_at", "last_used_at", "ip", "user_agent", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "revoke_reason"]
    search_fields = ["user__username", "user__email", "ip"]
    list_select_related = ["user"]
    readonly_fields = [
        "id",
        "user",
        "created_at",
        "last_used_at",
        "expires_at",
        "ip",
        "user_agent",
        "revoked_at",
        "revoke_reason",
    ]
    exclude = ["refresh_token_hash"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke selected sessions")
    def revoke(self, request: HttpRequest, queryset: QuerySet[AuthSession]) -> None:
        count = 0
        for session in queryset:
            services.session_revoke(
                session_id=session.id, user_id=session.user_id, reason="admin", actor_id=request.user.pk
            )
            count += 1
        self.message_user(request, f"{count} session(s) revoked.", messages.SUCCESS)


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ["group", "description"]
    search_fields = ["group__name"]

    def save_model(self, request: HttpRequest, obj: Role, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        selectors.roles_forget()

    def delete_model(self, request: HttpRequest, obj: Role) -> None:
        super().delete_model(request, obj)
        selectors.roles_forget()


admin.site.unregister(Group)


@admin.register(Group)
class RoleGroupAdmin(GroupAdmin):
    """Django's group admin; a renamed or new group changes `GET /roles`."""

    def save_model(self, request: HttpRequest, obj: Group, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        selectors.roles_forget()

    def delete_model(self, request: HttpRequest, obj: Group) -> None:
        super().delete_model(request, obj)
        selectors.roles_forget()


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is evidence."""

    list_display = ["created_at", "kind", "user", "actor", "ip", "user_agent"]
    list_filter = ["kind", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["user__username", "user__email", "ip"]
    list_select_related = ["user", "actor"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DecisionForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


@admin.register(RoleRequest)
class RoleRequestAdmin(admin.ModelAdmin):
    """Decide role requests here or over the API: both go through the same service."""

    list_display = ["created_at", "user", "role", "status", "decided_by", "decided_at"]
    list_filter = ["status", "role"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user", "role", "decided_by"]
    readonly_fields = [
        "user",
        "role",
        "reason",
        "status",
        "created_at",
        "decided_at",
        "decided_by",
        "comment",
    ]
    actions = ["approve_selected", "reject_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # users ask over the API

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # decided through the actions, never edited

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of who decided what, when and why is kept

    def _decide(self, request: HttpRequest, queryset: QuerySet[RoleRequest], approve: bool) -> Any:
        """The intermediate page asks for an optional comment, then decides each request."""
        if "apply" not in request.POST:
            context = {
                **self.admin_site.each_context(request),
                "title": "Approve role requests" if approve else "Reject role requests",
                "requests": queryset,
                "form": DecisionForm(),
                "action": request.POST["action"],
                "opts": self.model._meta,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/accounts/rolerequest/decide.html", context)
        form = DecisionForm(request.POST)
        comment = form.cleaned_data["comment"] if form.is_valid() else ""
        decide = services.role_request_approve if approve else services.role_request_reject
        done, refused = 0, []
        for role_request in queryset:
            try:
                decided = decide(request_id=role_request.id, admin_id=request.user.pk, comment=comment)
                self.log_change(
                    request, decided, f"{decided.status}: {comment}" if comment else decided.status
                )
                done += 1
            except ServiceError as exc:
                refused.append(f"{role_request.user}: {exc.detail}")
        verb = "approved" if approve else "rejected"
        self.message_user(request, f"{done} request(s) {verb}.", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not decided: " + "; ".join(refused), messages.WARNING)
        return None

    @admin.action(description="Approve selected role requests")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[RoleRequest]) -> Any:
        return self._decide(request, queryset, approve=True)

    @admin.action(description="Reject selected role requests")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[RoleRequest]) -> Any:
        return self._decide(request, queryset, approve=False)
