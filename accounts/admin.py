"""The back-office for accounts. Every change goes through `accounts.services`,
so an edit here has the same effects as the API (sessions, cache, staff flag,
events, audit): the add form, the change form, the password form and the actions.

Users are never deleted here: they are deactivated or soft-deleted (restorable)
by the actions, and removed for good only by `manage.py delete_user --hard`. A
refusal of a service (the last administrator, `last_admin`) is the page's error
message, and nothing is changed (`core.admin.ServiceModelAdmin`).
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from core.admin import ServiceModelAdmin, TickToActFormSet, TickToActInline, ViewOnlyAdminMixin, tick_form
from core.errors import ServiceError
from core.ids import Id

from . import services
from .admin_mfa import UserMFAAdminMixin
from .models import ROLE_USER, AuditEvent, AuthSession, LoginLockout, Role, RoleRequest, User
from .social.admin import IdentityInline


def _actor(request: HttpRequest) -> Id:
    """The administrator acting: the admin site lets only logged-in staff this far."""
    actor_id = request.user.pk
    assert actor_id is not None
    return actor_id


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


SessionRevokeForm = tick_form(AuthSession, "revoke", "Revoke this session on save.")


class SessionRevokeFormSet(TickToActFormSet):
    """A ticked session is revoked by `session_revoke`, as over the API."""

    tick = "revoke"

    def act(self, instance: Any) -> None:
        if instance.revoked_at is None:
            services.session_revoke(
                session_id=instance.pk,
                user_id=instance.user_id,
                reason="admin",
                actor_id=_actor(self.request),
            )


class AuthSessionInline(TickToActInline):
    """The user's sessions; tick "revoke" and save to end one."""

    model = AuthSession
    form = SessionRevokeForm
    formset = SessionRevokeFormSet
    fields = ("link", "created_at", "last_used_at", "expires_at", "ip", "user_agent", "revoked_at", "revoke")
    readonly_fields = ("link", "created_at", "last_used_at", "expires_at", "ip", "user_agent", "revoked_at")
    ordering = ("-last_used_at",)

    @admin.display(description="Session")
    def link(self, obj: AuthSession) -> str:
        url = reverse("admin:accounts_authsession_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, str(obj.pk)[:8])


class ServiceUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"


class ServiceUserCreationForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email", "full_name")


class ServicePasswordForm(AdminPasswordChangeForm):
    """Django's "Change password" form, saved by `password_set`: the user's sessions end,
    the change is audited with its actor and the user is told."""

    def __init__(self, user: User, *args: Any, actor_id: Id | None = None, **kwargs: Any) -> None:
        super().__init__(user, *args, **kwargs)
        self.actor_id = actor_id

    def save(self, commit: bool = True) -> User:
        usable = self.cleaned_data["set_usable_password"]
        password = self.cleaned_data["password1"] if usable else None
        self.user = services.password_set(user_id=self.user.pk, password=password, actor_id=self.actor_id)
        return self.user


@admin.register(User)
class UserAdmin(ServiceModelAdmin, UserMFAAdminMixin, DjangoUserAdmin):
    form = ServiceUserChangeForm
    add_form = ServiceUserCreationForm
    change_password_form = ServicePasswordForm
    list_display = ["username", "email", "full_name", "role_names", "is_active", "is_deleted", "created_at"]
    list_filter = [
        "groups",
        "is_active",
        "is_staff",
        "is_superuser",
        ("deleted_at", admin.EmptyFieldListFilter),
        LockedFilter,
        "email_verified",
    ]
    search_fields = ["username", "email", "full_name"]
    ordering = ["-created_at"]
    readonly_fields = [
        "id",
        "email_verified",
        "email_pending",
        "created_at",
        "updated_at",
        "deleted_at",
        "last_login",
        "related",
    ]
    filter_horizontal = ["groups"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "username",
                    "email",
                    "email_verified",
                    "email_pending",
                    "full_name",
                    "password",
                )
            },
        ),
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
    # The apps above this one add theirs with `user_inlines_add` (profiles: LLM settings, ...).
    inlines = [AuthSessionInline, IdentityInline]
    actions = [
        "deactivate_users",
        "soft_delete_users",
        "restore_users",
        "revoke_all_sessions",
        "unlock_users",
        "resend_verification",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("groups")

    def get_inlines(
        self, request: HttpRequest, obj: User | None
    ) -> list[type[admin.options.InlineModelAdmin]]:
        return list(self.inlines) if obj is not None else []  # a user being added has nothing to list yet

    @admin.display(description="Roles")
    def role_names(self, obj: User) -> str:
        return ", ".join(obj.roles)

    @admin.display(description="Deleted", boolean=True)
    def is_deleted(self, obj: User) -> bool:
        return obj.deleted_at is not None

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> User:
        if not change:
            return form.instance  # `user_create` makes and hashes it; the form's save would hash twice
        return super().save_form(request, form, change)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        """Add and change go through the API's services, never a bare `save()`.

        So the admin's edits emit `new_user` / `user_updated` / `role_changed`,
        write their audit rows, keep `is_staff` in step, end the sessions of a
        deactivated user, tell the old address of a changed email and refresh
        the cached user, exactly as the API does.
        """
        data = form.cleaned_data
        if not change:
            created = services.user_create(
                username=data["username"],
                email=data["email"],
                full_name=data.get("full_name", ""),
                password=data["password1"],
                actor_id=_actor(request),
            )
            obj.pk = created.pk
            obj._state.adding = False
        else:
            groups = data.get("groups")
            services.user_admin_update(
                user_id=obj.pk,
                actor_id=_actor(request),
                username=data.get("username"),
                email=data.get("email"),
                full_name=data.get("full_name"),
                is_active=data.get("is_active"),
                is_superuser=data.get("is_superuser"),
                roles=None if groups is None else ([g.name for g in groups] or [ROLE_USER]),
            )
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Roles were set by the service in `save_model`; the form's own m2m save
        # would set them again, unaudited. Only the inline (sessions) is left.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        # Django's view builds `self.change_password_form(user, data)`; the admin
        # object serves every request, so the acting administrator goes into a
        # copy made for this request rather than onto `self`.
        view = copy.copy(self)
        view.change_password_form = partial(ServicePasswordForm, actor_id=_actor(request))  # type: ignore[assignment]
        return DjangoUserAdmin.user_change_password(view, request, id, form_url)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # No bare `delete()`: no event, no audit, no last-administrator check. The actions
        # deactivate or soft-delete; `manage.py delete_user --hard` removes for good.
        return False

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

    def _each_at_once(
        self, request: HttpRequest, users: QuerySet[User], change: Any, done: str, not_done: str
    ) -> None:
        """`change` each user in one transaction: one refusal and nobody is changed."""
        count, current = 0, None
        try:
            with transaction.atomic():
                for current in users:
                    change(current)
                    count += 1
        except ServiceError as exc:
            self.message_user(request, f"{not_done}: {current}: {exc.detail}", messages.ERROR)
            return
        self.message_user(request, f"{count} user(s) {done}.", messages.SUCCESS)

    @admin.action(description="Deactivate the selected users (their sessions end)")
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        actor = _actor(request)
        self._each_at_once(
            request,
            queryset.filter(is_active=True),
            lambda user: services.user_admin_update(user_id=user.id, actor_id=actor, is_active=False),
            "deactivated",
            "Nobody was deactivated",
        )

    @admin.action(description="Delete the selected users (soft: an administrator can restore them)")
    def soft_delete_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        actor = _actor(request)
        self._each_at_once(
            request,
            queryset.filter(deleted_at__isnull=True),
            lambda user: services.user_soft_delete(user_id=user.id, actor_id=actor),
            "deleted",
            "Nobody was deleted",
        )

    @admin.action(description="Restore the selected deleted users")
    def restore_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        restored, refused = 0, []
        for user in queryset.filter(deleted_at__isnull=False):
            try:
                services.user_restore(user_id=user.id, actor_id=_actor(request))
                restored += 1
            except ServiceError as exc:
                refused.append(f"{user.username}: {exc.detail}")
        self.message_user(request, f"{restored} user(s) restored.", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not restored: " + "; ".join(refused), messages.WARNING)

    @admin.action(description="Unlock the selected users (lift a login lockout)")
    def unlock_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        count = sum(services.lockout_unlock_user(user_id=u.id, actor_id=_actor(request)) for u in queryset)
        self.message_user(request, f"{count} user(s) unlocked.", messages.SUCCESS)

    @admin.action(description="Resend the verification link to the selected users' unverified addresses")
    def resend_verification(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        sent, skipped = 0, []
        for user in queryset:
            try:
                services.email_verification_resend(user_id=user.id)
                sent += 1
            except ServiceError:
                skipped.append(user.username)
        self.message_user(request, f"{sent} verification link(s) sent.", messages.SUCCESS)
        if skipped:
            self.message_user(request, "Nothing to verify for: " + ", ".join(skipped), messages.WARNING)

    @admin.action(description="Revoke all sessions of the selected users")
    def revoke_all_sessions(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        total = sum(
            services.sessions_revoke_all(user_id=user.id, reason="admin", actor_id=_actor(request))
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

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # looked at; ended with the action, through `session_revoke`

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke selected sessions")
    def revoke(self, request: HttpRequest, queryset: QuerySet[AuthSession]) -> None:
        count = 0
        for session in queryset:
            services.session_revoke(
                session_id=session.id, user_id=session.user_id, reason="admin", actor_id=_actor(request)
            )
            count += 1
        self.message_user(request, f"{count} session(s) revoked.", messages.SUCCESS)


@admin.register(Role)
class RoleAdmin(ServiceModelAdmin):
    """The description `GET /roles` shows for each role; roles themselves are on the Groups page."""

    list_display = ["group", "description"]
    search_fields = ["group__name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Role | None = None) -> list[str]:
        return ["group"] if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a role's description goes with the role; clear it by editing

    def save_model(self, request: HttpRequest, obj: Role, form: Any, change: bool) -> None:
        described = services.role_describe(
            group_id=obj.group_id, description=form.cleaned_data["description"], actor_id=_actor(request)
        )
        obj.pk = described.pk
        obj._state.adding = False

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # nothing but the description, saved by `role_describe`


admin.site.unregister(Group)


@admin.register(Group)
class RoleGroupAdmin(ServiceModelAdmin, GroupAdmin):
    """Roles (Django groups) through the role services: a rename or a delete reaches every holder
    (`role_changed`, audit, cache) and `GET /roles`; the service's own roles are kept."""

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Group:
        return form.instance  # `role_create` / `role_update` write it, never the form

    def save_model(self, request: HttpRequest, obj: Group, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            services.role_update(
                group_id=obj.pk,
                name=data["name"],
                permissions=data.get("permissions"),
                actor_id=_actor(request),
            )
        else:
            created = services.role_create(
                name=data["name"], permissions=data.get("permissions") or (), actor_id=_actor(request)
            )
            obj.pk = created.pk
            obj._state.adding = False
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # the permissions were set by the service in `save_model`

    def delete_model(self, request: HttpRequest, obj: Group) -> None:
        services.role_delete(group_id=obj.pk, actor_id=_actor(request))

    @transaction.atomic
    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Group]) -> None:
        for group in queryset:
            services.role_delete(group_id=group.pk, actor_id=_actor(request))

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # The description and the role requests go with the role through `role_delete`;
        # that their own pages delete nothing by hand is no reason to refuse here.
        deleted, model_count, _, protected = super().get_deleted_objects(objs, request)
        return deleted, model_count, set(), protected


@admin.register(AuditEvent)
class AuditEventAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: the audit log is evidence."""

    list_display = ["created_at", "kind", "user", "actor", "ip", "user_agent"]
    list_filter = ["kind", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["user__username", "user__email", "ip"]
    list_select_related = ["user", "actor"]
    date_hierarchy = "created_at"


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
                decided = decide(request_id=role_request.id, admin_id=_actor(request), comment=comment)
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


def user_inlines_add(*inlines: type[admin.options.InlineModelAdmin[Any, Any]]) -> None:
    """An app above this one shows its per-user data on the user's page: called once, from its
    `admin.py` (which the admin's autodiscovery imports once), so that accounts never imports it."""
    UserAdmin.inlines = [
        *UserAdmin.inlines,
        *(inline for inline in inlines if inline not in UserAdmin.inlines),
    ]
