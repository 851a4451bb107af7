"""The Django admin's second factor: the code page after the password, the enrollment walk (with a
QR code) for a staff user who must have MFA and has none, and the reset of a user's MFA.

The admin site (`config.admin_site`) opens no page to a session that has not passed this: its
`has_permission` asks `admin_mfa_passed`, and its login form hands over to these pages. The
checks are the API's services (`accounts.services.mfa*`): the same lockout count, five wrong codes
per login, single-use codes.

The browser session keeps which challenge its login waits on (its id: the session is already
bound to the user, so no token is handed out) and, once passed, how. A session without that mark
(from before this, or from any other way of logging in) passes only for a user who needs no second
factor: fail closed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from core.errors import RateLimited, ServiceError

from . import totp
from .models import User
from .services import mfa, mfa_login
from .services.mfa_challenges import MFACodeInvalid, MFATokenInvalid
from .services.mfa_codes import recovery_codes_left
from .throttles import LoginAddressThrottle

SESSION_KEY = "accounts.admin_mfa"
#: How a session passed that is not a second factor: the user needed none when it logged in.
NOT_NEEDED = "not_needed"


def _needs_mfa(user: Any) -> bool:
    return bool(user.mfa_enabled) or mfa.mfa_required_for(is_superuser=user.is_superuser, roles=user.roles)


def _state(request: HttpRequest) -> dict[str, Any]:
    state = request.session.get(SESSION_KEY)
    if not isinstance(state, dict) or state.get("user") != str(request.user.pk):
        return {}
    return state


def admin_mfa_passed(request: HttpRequest) -> bool:
    """Whether the browser session's user may see admin pages as far as MFA goes.

    Asked on every admin page, so a user who turns MFA on (or is given a role that demands it)
    after logging in is asked for it at the next page.
    """
    user = request.user
    if not user.is_authenticated:
        return False
    state = _state(request)
    if state.get("passed") and state.get("method") != NOT_NEEDED:
        return True
    return not _needs_mfa(user)


def _pending(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_authenticated and user.is_active and user.is_staff) and not admin_mfa_passed(request)


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:index")


def _to(name: str, request: HttpRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect(f"{reverse(name)}?{urlencode({'next': _next(request)})}")


def admin_login_pending_redirect(request: HttpRequest) -> HttpResponse | None:
    """For the login page: a user who typed the password and still owes the code goes to its page."""
    return _to("admin:mfa_verify", request) if request.method == "GET" and _pending(request) else None


def admin_login_started(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Right after the password form logged a user in: a new login owes its own second factor."""
    user = request.user
    request.session.pop(SESSION_KEY, None)
    challenge = mfa_login.mfa_admin_challenge_open(user=user)  # type: ignore[arg-type]
    if challenge is None:
        request.session[SESSION_KEY] = {"user": str(user.pk), "passed": True, "method": NOT_NEEDED}
        return response
    request.session[SESSION_KEY] = {"user": str(user.pk), "challenge": str(challenge.id), "passed": False}
    return _to("admin:mfa_verify", request)


def _passed(request: HttpRequest, method: str) -> None:
    request.session[SESSION_KEY] = {"user": str(request.user.pk), "passed": True, "method": method}
    request.session.cycle_key()  # a new session id for the session that now opens every page


def _start_over(request: HttpRequest, message: str) -> HttpResponseRedirect:
    """Back to the password: the login expired, was spent by wrong codes, or the account is locked."""
    logout(request)
    messages.error(request, message)
    return HttpResponseRedirect(reverse("admin:login"))


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=64,
        label="Code",
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
    )


def _page(request: HttpRequest, site: admin.AdminSite, template: str, **context: Any) -> TemplateResponse:
    base = {**site.each_context(request), "next": _next(request), "site_header": site.site_header}
    return TemplateResponse(request, f"admin/accounts/mfa/{template}", {**base, **context})


def _throttled(request: HttpRequest) -> bool:
    return request.method == "POST" and not LoginAddressThrottle().allow_request(request, None)  # type: ignore[arg-type]


def verify_view(request: HttpRequest, site: admin.AdminSite) -> HttpResponse:
    """The code after the password (a TOTP code or a recovery code)."""
    if not (request.user.is_authenticated and request.user.is_active and request.user.is_staff):
        return HttpResponseRedirect(reverse("admin:login"))
    if admin_mfa_passed(request):
        return HttpResponseRedirect(_next(request))
    user = request.user
    challenge_id = _state(request).get("challenge")
    if challenge_id is None:
        return _start_over(request, "Log in again: this login has no second factor waiting.")
    if not user.mfa_enabled:  # type: ignore[union-attr]
        return _to("admin:mfa_setup", request)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if _throttled(request):
            return _start_over(request, "Too many login attempts from this address. Try again later.")
        try:
            method = mfa_login.mfa_admin_verify(challenge_id=challenge_id, code=form.cleaned_data["code"])
        except MFACodeInvalid as exc:
            form.add_error("code", exc.detail)
        except RateLimited as exc:
            return _start_over(request, f"{exc.detail} ({exc.retry_after} s)")
        except ServiceError as exc:  # the login expired, was spent, or the account cannot sign in
            return _start_over(request, exc.detail)
        else:
            _passed(request, method.value)
            return HttpResponseRedirect(_next(request))
    return _page(request, site, "verify.html", form=form, title="Two-factor authentication")


def setup_view(request: HttpRequest, site: admin.AdminSite) -> HttpResponse:
    """The enrollment walk for a staff user whose role demands MFA and who has none: a secret
    (its QR code, and the text for typing), then the first code, then the recovery codes."""
    if not (request.user.is_authenticated and request.user.is_active and request.user.is_staff):
        return HttpResponseRedirect(reverse("admin:login"))
    if admin_mfa_passed(request):
        return HttpResponseRedirect(_next(request))
    if request.user.mfa_enabled:  # type: ignore[union-attr]
        return _to("admin:mfa_verify", request)
    challenge_id = _state(request).get("challenge")
    if challenge_id is None:
        return _start_over(request, "Log in again to set up two-factor authentication.")
    form = CodeForm(request.POST or None)
    form.fields["code"].help_text = "The 6-digit code your authenticator app shows for this account."
    try:
        if request.method == "POST" and form.is_valid():
            if _throttled(request):
                return _start_over(request, "Too many login attempts from this address. Try again later.")
            codes = mfa_login.mfa_admin_enroll_confirm(
                challenge_id=challenge_id, code=form.cleaned_data["code"]
            )
            _passed(request, "totp")
            # Shown on this answer only: nothing keeps them to show again.
            return _page(request, site, "recovery_codes.html", codes=codes, title="Your recovery codes")
        enrollment = mfa.mfa_totp_enroll_at_admin_login(challenge_id=challenge_id)
    except MFATokenInvalid:
        return _start_over(request, "The login expired: log in again to set up two-factor authentication.")
    except RateLimited as exc:
        return _start_over(request, f"{exc.detail} ({exc.retry_after} s)")
    except ServiceError as exc:
        return _start_over(request, exc.detail)
    except forms.ValidationError:  # a wrong code: the same secret again, with the error
        form.add_error("code", mfa.WRONG_CODE)
        pending = mfa.mfa_totp_pending_at_admin_login(challenge_id=challenge_id)
        if pending is None:
            return _start_over(request, "The enrollment changed meanwhile: log in again.")
        enrollment = pending
    return _page(
        request,
        site,
        "setup.html",
        form=form,
        title="Set up two-factor authentication",
        secret=enrollment.secret,
        qr_svg=totp.qr_svg(enrollment.otpauth_uri),
        otpauth_uri=enrollment.otpauth_uri,
    )


def cancel_view(request: HttpRequest, site: admin.AdminSite) -> HttpResponse:
    """Leave the code page: log out (a GET only shows the way back)."""
    if request.method == "POST":
        logout(request)
    return HttpResponseRedirect(reverse("admin:login"))


def reset_view(request: HttpRequest, site: admin.AdminSite, user_id: str) -> HttpResponse:
    """An administrator removes a user's MFA (a lost device), behind their own second factor."""
    target = User.objects.filter(id=user_id).first()
    change_url = reverse("admin:accounts_user_change", args=[user_id]) if target else reverse("admin:index")
    if target is None or not request.user.has_perm("accounts.change_user"):
        return HttpResponseRedirect(change_url)
    if _state(request).get("method") in {None, NOT_NEEDED} or not request.user.mfa_enabled:  # type: ignore[union-attr]
        messages.error(
            request, "Turn on two-factor authentication for your own account, and log in with it, first."
        )
        return HttpResponseRedirect(change_url)
    if request.method == "POST":
        if mfa.mfa_reset(user_id=target.id, actor_id=request.user.pk, by="administrator"):
            messages.success(request, f"Two-factor authentication of {target} was removed; they were told.")
        else:
            messages.info(request, f"{target} had no two-factor authentication.")
        return HttpResponseRedirect(change_url)
    return _page(request, site, "reset.html", target=target, title="Remove two-factor authentication")


def admin_mfa_urls(site: admin.AdminSite) -> list[URLPattern]:
    """The pages of this module on the admin site (the first three open before `has_permission`)."""

    def bare(view: Any) -> Any:
        return never_cache(csrf_protect(lambda request, **kwargs: view(request, site, **kwargs)))

    return [
        path("mfa/", bare(verify_view), name="mfa_verify"),
        path("mfa/setup/", bare(setup_view), name="mfa_setup"),
        path("mfa/cancel/", bare(cancel_view), name="mfa_cancel"),
        path(
            "mfa/reset/<uuid:user_id>/",
            site.admin_view(lambda request, user_id: reset_view(request, site, str(user_id))),
            name="mfa_reset",
        ),
    ]


def mfa_summary(user: User) -> str:
    """What the user's admin page says about their MFA: on or off, and the codes left; never a secret."""
    if not user.mfa_enabled:
        return "Off"
    return f"On (TOTP), {recovery_codes_left(user_id=user.id)} recovery code(s) left"


class UserMFAAdminMixin(admin.ModelAdmin):
    """The user's admin page: a "Two-factor authentication" section (state, and the reset)."""

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if obj is None else (*fieldsets, ("Two-factor authentication", {"fields": ("mfa",)}))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*super().get_readonly_fields(request, obj), "mfa"]

    @admin.display(description="Two-factor authentication")
    def mfa(self, obj: User) -> str:
        summary = mfa_summary(obj)
        if not obj.mfa_enabled:
            return summary
        reset = reverse("admin:mfa_reset", args=[obj.pk])
        return format_html('{} · <a href="{}">Reset (lost device)…</a>', summary, reset)
