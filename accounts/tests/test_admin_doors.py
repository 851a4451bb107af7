"""Every door the Django admin opens to a change goes through a service (DESIGN.md: "Every door
to a change goes through the same service").

The test walks the project's admin site (`admin.site._registry`, every model any app
registered) and asks, as a superuser, what each model admin lets one do. A door that is
open must be a method of the project's own (not inherited from Django or a library) whose
code calls a service function (`<entity>_<action>` in a `services` module) and never
`super()` (Django's bare `save()` / `delete()`):

- add or change: `save_model`, and `save_related` overridden (Django's own saves the
  form's many-to-many fields behind the service's back);
- delete: `delete_model` (the delete page) and `delete_queryset` (the bulk action);
- every action; the user admin's password form; the formset of every inline that can
  add, change or delete rows.

So a model registered tomorrow with a plain `ModelAdmin` fails here until its doors are
either closed (`has_*_permission` False) or routed through a service.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable
from typing import Any

import pytest
from django import forms
from django.contrib import admin
from django.contrib.admin.actions import delete_selected
from django.contrib.auth.models import Group
from django.test import RequestFactory

from accounts.models import User
from config.admin_site import ServiceAdminSite
from core.admin import ServiceModelAdmin, delete_selected_at_once
from profiles.models import Resume

#: The project's own packages: a door defined anywhere else is Django's or a library's.
PROJECT = {"accounts", "profiles", "notifications", "config", "core"}
SERVICE_MODULE = re.compile(r"^(accounts|profiles|notifications)(\.\w+)*\.services(\.\w+)?$")
SERVICE_NAME = re.compile(r"^[a-z]+(_[a-z]+)+$")
#: Actions that only confirm and then call `delete_queryset` (checked as the delete door).
DELETE_ACTIONS = {delete_selected, delete_selected_at_once}


def superuser_request() -> Any:
    request = RequestFactory().get("/admin/")
    request.user = User(username="root", is_superuser=True, is_staff=True, is_active=True)
    return request


def is_service(value: Any) -> bool:
    return (
        inspect.isfunction(value)
        and bool(SERVICE_MODULE.match(value.__module__ or ""))
        and bool(SERVICE_NAME.match(value.__name__))
    )


def _names(code: types.CodeType) -> set[str]:
    """The global and attribute names a function's code (and its lambdas, comprehensions) uses."""
    names = set(code.co_names) | set(code.co_freevars)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _scope(function: Any) -> dict[str, Any]:
    scope = dict(function.__globals__)
    closure = function.__closure__ or ()
    for name, cell in zip(function.__code__.co_freevars, closure, strict=True):
        try:
            scope[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    return scope


def services_called(function: Any, owner: type | None = None, depth: int = 0) -> set[str]:
    """The service functions `function`'s code names: `services.user_create(...)`, `document_delete(...)`,
    or through a helper method of `owner` (`self._decide(...)`), two levels down at most."""
    function = inspect.unwrap(function)
    if not hasattr(function, "__code__"):
        return set()
    names = _names(function.__code__)
    scope = _scope(function)
    found = set()
    for name in names:
        value = scope.get(name)
        if is_service(value):
            found.add(f"{value.__module__}.{value.__name__}")
        elif isinstance(value, types.ModuleType):
            for attribute in names:
                target = getattr(value, attribute, None)
                if is_service(target):
                    found.add(f"{target.__module__}.{target.__name__}")
    if depth < 2 and owner is not None:
        for name in names:
            helper = inspect.getattr_static(owner, name, None)
            if inspect.isfunction(helper) and helper is not function and _project(helper):
                found |= services_called(helper, owner, depth + 1)
    return found


def _project(function: Any) -> bool:
    return str(getattr(inspect.unwrap(function), "__module__", "")).split(".")[0] in PROJECT


def _defined_by(cls: type, name: str) -> tuple[type, Any]:
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass, vars(klass)[name]
    raise AttributeError(name)


def _door(where: str, function: Any, owner: type | None) -> list[str]:
    """Why `function` is not a service-backed door (nothing when it is one)."""
    function = inspect.unwrap(function)
    if not _project(function):
        return [f"{where} is {function.__module__}.{function.__qualname__}, not the project's service call"]
    problems = []
    if "super" in _names(function.__code__):
        problems.append(f"{where} calls super(): Django's bare save or delete")
    if not services_called(function, owner):
        problems.append(f"{where} calls no service")
    return problems


def _hook(model_admin: Any, name: str) -> list[str]:
    owner, function = _defined_by(type(model_admin), name)
    where = f"{type(model_admin).__name__}.{name}"
    if owner.__module__.split(".")[0] not in PROJECT:
        return [f"{where} is inherited from {owner.__module__}.{owner.__qualname__}"]
    return _door(where, function, type(model_admin))


def _overridden_without_super(model_admin: Any, name: str) -> list[str]:
    owner, function = _defined_by(type(model_admin), name)
    where = f"{type(model_admin).__name__}.{name}"
    if owner.__module__.split(".")[0] not in PROJECT:
        return [f"{where} is inherited from {owner.__module__}.{owner.__qualname__}"]
    if "super" in _names(inspect.unwrap(function).__code__):
        return [f"{where} calls super(): the form's own save"]
    return []


def _formset_problems(model_admin: Any, inline: Any, request: Any) -> list[str]:
    writes = (
        inline.has_add_permission(request, None)
        or inline.has_change_permission(request, None)
        or (inline.can_delete and inline.has_delete_permission(request, None))
    )
    if not writes:
        return []
    where = f"{type(model_admin).__name__} inline {type(inline).__name__}"
    owner, save = _defined_by(inline.formset, "save")
    if owner.__module__.split(".")[0] not in PROJECT:
        return [f"{where} saves with {owner.__module__}.{owner.__qualname__}.save"]
    return _door(f"{where} formset save", save, inline.formset)


def door_problems(model_admin: Any, request: Any | None = None) -> list[str]:
    """Every way `model_admin` lets a superuser change data without a service."""
    request = request or superuser_request()
    problems: list[str] = []
    if model_admin.has_add_permission(request) or model_admin.has_change_permission(request):
        problems += _hook(model_admin, "save_model")
        problems += _overridden_without_super(model_admin, "save_related")
    if model_admin.has_delete_permission(request):
        problems += _hook(model_admin, "delete_model")
        problems += _hook(model_admin, "delete_queryset")
    for name, (function, _, _) in model_admin.get_actions(request).items():
        if function not in DELETE_ACTIONS:
            problems += _door(f"{type(model_admin).__name__} action {name}", function, type(model_admin))
    password_form = getattr(model_admin, "change_password_form", None)
    if password_form is not None:
        _, save = _defined_by(password_form, "save")
        problems += _door(f"{type(model_admin).__name__} password form save", save, password_form)
    for inline_class in model_admin.inlines:
        inline = inline_class(model_admin.model, model_admin.admin_site)
        problems += _formset_problems(model_admin, inline, request)
    return problems


# --- the project's admin site ------------------------------------------------------------------


def test_the_project_admin_site_is_the_one_walked():
    assert isinstance(admin.site, ServiceAdminSite)
    labels = {model._meta.label for model in admin.site._registry}
    assert {"accounts.User", "auth.Group", "profiles.Resume", "notifications.Notification"} <= labels


@pytest.mark.parametrize(
    "model_admin",
    list(admin.site._registry.values()),
    ids=[model._meta.label for model in admin.site._registry],
)
def test_every_admin_door_goes_through_a_service(model_admin):
    assert door_problems(model_admin) == []


def test_the_deletes_that_must_not_exist_are_closed():
    request = superuser_request()
    registry = {model._meta.label: model_admin for model, model_admin in admin.site._registry.items()}
    for label in (
        "accounts.User",
        "accounts.AuditEvent",
        "notifications.OutboxEvent",
        "notifications.Broadcast",
    ):
        assert not registry[label].has_delete_permission(request), label
    assert not registry["notifications.Notification"].has_change_permission(request)
    assert "social_django.Nonce" not in registry
    assert "social_django.Association" not in registry


def test_the_deletes_it_keeps_are_all_or_nothing():
    request = superuser_request()
    for model, model_admin in admin.site._registry.items():
        if model_admin.has_delete_permission(request):
            assert isinstance(model_admin, ServiceModelAdmin), model._meta.label
            action = model_admin.get_actions(request)["delete_selected"][0]
            assert action is delete_selected_at_once, model._meta.label


# --- the check itself catches what it is there for ------------------------------------------------


def _problems_of(admin_class: type, model: type = Resume) -> list[str]:
    return door_problems(admin_class(model, admin.AdminSite()))


def test_the_check_fails_a_plain_model_admin():
    problems = _problems_of(admin.ModelAdmin)
    assert any("save_model is inherited" in p for p in problems)
    assert any("save_related is inherited" in p for p in problems)
    assert any("delete_model is inherited" in p for p in problems)
    assert any("delete_queryset is inherited" in p for p in problems)


def test_the_check_fails_an_override_that_calls_no_service_or_super():
    from django.core.cache import cache

    class Sneaky(admin.ModelAdmin):
        def has_add_permission(self, request: Any) -> bool:
            return False

        def has_change_permission(self, request: Any, obj: Any = None) -> bool:
            return False

        def delete_model(self, request: Any, obj: Any) -> None:
            super().delete_model(request, obj)
            cache.delete(f"resume:{obj.pk}")

        def delete_queryset(self, request: Any, queryset: Any) -> None:
            queryset.delete()

    problems = _problems_of(Sneaky)
    assert "Sneaky.delete_model calls super(): Django's bare save or delete" in problems
    assert "Sneaky.delete_queryset calls no service" in problems


def test_the_check_fails_an_action_and_an_inline_that_write_by_hand():
    def wipe(modeladmin: Any, request: Any, queryset: Any) -> None:
        queryset.update(title="")

    class WithDoors(admin.ModelAdmin):
        actions = [wipe]

        def has_add_permission(self, request: Any) -> bool:
            return False

        def has_change_permission(self, request: Any, obj: Any = None) -> bool:
            return False

        def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
            return False

    problems = _problems_of(WithDoors)
    assert any("action wipe calls no service" in p for p in problems), problems

    # An inline with Django's own formset: it would save rows by hand.
    class UsersInline(admin.TabularInline):
        model = User.groups.through

    class Page(admin.ModelAdmin):
        inlines = [UsersInline]

        def has_add_permission(self, request: Any) -> bool:
            return False

        def has_change_permission(self, request: Any, obj: Any = None) -> bool:
            return False

        def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
            return False

    problems = door_problems(Page(Group, admin.AdminSite()))
    assert any("saves with django.forms.models.BaseModelFormSet.save" in p for p in problems), problems


def test_the_check_passes_a_service_backed_admin():
    from profiles.services.documents import document_delete

    class Backed(admin.ModelAdmin):
        def has_add_permission(self, request: Any) -> bool:
            return False

        def has_change_permission(self, request: Any, obj: Any = None) -> bool:
            return False

        def delete_model(self, request: Any, obj: Any) -> None:
            document_delete(model=Resume, user_id=obj.user_id, document_id=obj.pk)

        def delete_queryset(self, request: Any, queryset: Any) -> None:
            for obj in queryset:
                self.delete_model(request, obj)

    assert _problems_of(Backed) == []


def test_a_service_is_named_entity_action_in_a_services_module():
    from accounts import selectors, services
    from notifications.services import notification_delete

    assert is_service(services.role_delete)
    assert is_service(notification_delete)
    assert not is_service(selectors.roles_list)
    assert not is_service(forms.Form)
    helper: Callable[..., Any] = services.user_admin_update
    assert services_called(lambda: helper()) == {"accounts.services.users.user_admin_update"}
