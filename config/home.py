"""Where `/` and the admin's "View site" link lead: somewhere useful instead of a 404.

In development, the API docs. In production, the frontend (`SOCIAL_AUTH_FRONTEND_URL`, where the
social login hands its tokens over) when one is configured; otherwise nowhere: `/` stays a JSON
404 and the admin shows no link, rather than advertise the docs of a production API.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from core.exceptions import not_found


def home_url() -> str | None:
    if not settings.PRODUCTION:
        return reverse("docs")
    frontend = str(settings.SOCIAL_AUTH_FRONTEND_URL or "").split("#", 1)[0]
    return frontend if frontend and frontend != "/" else None


def home(request: HttpRequest) -> HttpResponse:
    url = home_url()
    return HttpResponseRedirect(url) if url else not_found(request)
