"""One place builds a mail (issue 22): `notifications.mail.email_message`, a template pair rendered
as a text body with its HTML alternative; no other module builds one by hand."""

from __future__ import annotations

from pathlib import Path

from notifications.mail import email_message

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "config", "core", "notifications", "profiles")


def test_a_mail_has_its_text_and_its_html_part():
    message = email_message(
        template="accounts/email/email_changed",
        subject="Changed",
        to=["old@example.com"],
        context={"user": {"username": "ada"}, "previous_email": "old@example.com", "email": "<b>x</b>"},
    )
    assert (message.subject, message.to) == ("Changed", ["old@example.com"])
    assert message.body.strip()
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    assert "&lt;b&gt;x&lt;/b&gt;" in html  # the HTML part escapes what it is given
    assert "<b>x</b>" not in html


def test_no_module_builds_a_mail_by_hand():
    builders = [
        str(path.relative_to(ROOT))
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "tests" not in path.parts
        and path != ROOT / "notifications" / "mail.py"
        and "EmailMultiAlternatives(" in path.read_text()
    ]
    assert builders == []
