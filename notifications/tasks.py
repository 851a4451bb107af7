"""Background work for notifications and events. Tasks take ids and call services."""

from __future__ import annotations

from celery import shared_task

from . import outbox, services


@shared_task(
    autoretry_for=(OSError,), retry_backoff=True, retry_backoff_max=300, retry_kwargs={"max_retries": 8}
)
def send_notification_emails(notification_ids: list[str]) -> int:
    """Mail a batch of notifications; SMTP trouble retries with backoff (sent ones are marked)."""
    return services.notification_emails_send(notification_ids=notification_ids)


@shared_task(bind=True, autoretry_for=(Exception,), retry_backoff=True, retry_kwargs={"max_retries": 5})
def broadcast_fanout(self: object, broadcast_id: str, after_id: str | None = None) -> None:
    """One batch of a broadcast, then the next batch as a new task: no task runs long."""
    last = services.broadcast_fanout_batch(broadcast_id=broadcast_id, after_id=after_id)
    if last is not None:
        broadcast_fanout.delay(broadcast_id, last)


@shared_task(ignore_result=True)
def publish_outbox() -> int:
    """Relay pending events to Kafka (after a commit that emitted, and from beat's sweep)."""
    return outbox.outbox_publish()


@shared_task
def purge_outbox() -> int:
    return outbox.outbox_purge()
