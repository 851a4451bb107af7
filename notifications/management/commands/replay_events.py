from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from django.utils.dateparse import parse_datetime

from notifications.models import OutboxEvent


def _moment(value: str, option: str) -> datetime:
    moment = parse_datetime(value)
    if moment is None or moment.tzinfo is None:
        raise CommandError(f"{option}: give an ISO 8601 time with its zone, e.g. 2026-11-30T08:00:00Z")
    return moment


class Command(BaseCommand):
    help = (
        "Mark stored events as pending again so the relay publishes them once more (a consumer lost "
        "data). Consumers drop what they already had by event_id. Published events are kept "
        "OUTBOX_RETENTION_DAYS, so that is how far back a replay reaches."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", required=True, help="events created at or after (ISO 8601 with zone)")
        parser.add_argument("--until", help="events created before (ISO 8601 with zone)")
        parser.add_argument("--name", action="append", default=[], help="only this event name (repeatable)")
        parser.add_argument("--topic", help="only this topic")
        parser.add_argument("--dry-run", action="store_true", help="count, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        events = OutboxEvent.objects.filter(created_at__gte=_moment(options["since"], "--since"))
        if options["until"]:
            events = events.filter(created_at__lt=_moment(options["until"], "--until"))
        if options["name"]:
            events = events.filter(key__in=options["name"])
        if options["topic"]:
            events = events.filter(topic=options["topic"])
        published = events.filter(~Q(published_at=None))
        if options["dry_run"]:
            self.stdout.write(f"{published.count()} published event(s) would be replayed")
            return
        # One conditional UPDATE: a relay running meanwhile sees each row either before or after.
        count = published.update(published_at=None, last_error="")
        self.stdout.write(f"{count} event(s) pending again; `manage.py publish_events` sends them now")
