"""The one place a mail is built: a template pair (`<name>.txt` and `<name>.html`) rendered with one
context, as a text body with its HTML alternative. Every sender uses it (the notifications' own
mails, the password reset, the old address told of an email change), so every mail the service
sends has both parts, the same headers and the same escaping rules (the HTML part autoescapes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def email_message(
    *, template: str, subject: str, to: Sequence[str], context: Mapping[str, Any]
) -> EmailMultiAlternatives:
    """`template` names the pair without its extension, e.g. `accounts/email/password_reset`."""
    message = EmailMultiAlternatives(
        subject=subject, body=render_to_string(f"{template}.txt", dict(context)), to=list(to)
    )
    message.attach_alternative(render_to_string(f"{template}.html", dict(context)), "text/html")
    return message
