"""Background work for accounts. Tasks take ids and call services."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import services
from .models import AuditEvent, AuthSession, MFAChallenge


@shared_task(autoretry_for=(OSError,), retry_backoff=True, retry_kwargs={"max_retries": 5})
def process_password_reset(email: str, ip: str | None = None, user_agent: str = "") -> bool:
    """A reset request, known address or not (takes the address: no id exists on the request path)."""
    return services.password_reset_process(email=email, ip=ip, user_agent=user_agent)


@shared_task(autoretry_for=(OSError,), retry_backoff=True, retry_kwargs={"max_retries": 5})
def send_password_reset_email(user_id: str) -> None:
    """Kept for messages queued before `process_password_reset` replaced it."""
    services.password_reset_send(user_id=user_id)


@shared_task(autoretry_for=(OSError,), retry_backoff=True, retry_kwargs={"max_retries": 5})
def send_email_changed_notice(notification_id: str) -> None:
    """Tell the old address of an account that its email changed, or is asked to (the notification names it)."""
    services.email_notice_send(notification_id=notification_id)


@shared_task(autoretry_for=(OSError,), retry_backoff=True, retry_kwargs={"max_retries": 5})
def send_email_verification(user_id: str) -> bool:
    """Mail a verification link to the account's unverified or pending address (read here, not queued)."""
    return services.email_verification_send(user_id=user_id)


@shared_task
def purge_deleted_accounts() -> int:
    return services.users_purge_deleted()


@shared_task
def purge_old_records() -> dict[str, int]:
    """Audit rows past `AUDIT_RETENTION_DAYS`; sessions ended over a week ago; MFA challenges (the
    logins that waited for a code) a day after they expired."""
    now = timezone.now()
    audit, _ = AuditEvent.objects.filter(
        created_at__lt=now - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    ).delete()
    old = now - timedelta(days=7)
    sessions, _ = AuthSession.objects.filter(expires_at__lt=old).delete()
    revoked, _ = AuthSession.objects.filter(revoked_at__lt=old).delete()
    challenges, _ = MFAChallenge.objects.filter(expires_at__lt=now - timedelta(days=1)).delete()
    return {"audit_events": audit, "sessions": sessions + revoked, "mfa_challenges": challenges}


@shared_task
def purge_social_state() -> dict[str, int]:
    """The social login redirect flow's abandoned round trips: `state` nonces and expired browser sessions.

    A started login that never came back leaves both behind (a `state` lives 30 minutes).
    """
    from django.contrib.sessions.models import Session
    from social_django.models import Nonce

    cutoff = int(timezone.now().timestamp()) - 86400
    nonces, _ = Nonce.objects.filter(timestamp__lt=cutoff).delete()
    browser_sessions, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return {"nonces": nonces, "browser_sessions": browser_sessions}
