from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications import consumer


class Command(BaseCommand):
    help = "Consume events for this service (topic KAFKA_TOPIC_AI_RESULTS) until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--max-messages", type=int, default=None, help="stop after this many messages")
        parser.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
        parser.add_argument("--topic", default=None, help="override KAFKA_TOPIC_AI_RESULTS")

    def handle(
        self, *args: Any, max_messages: int | None, timeout: float | None, topic: str | None, **options: Any
    ) -> None:
        if not settings.KAFKA_BOOTSTRAP_SERVERS:
            raise CommandError("KAFKA_BOOTSTRAP_SERVERS is not set: there is no broker to consume from.")
        from kafka import KafkaConsumer

        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        kafka_consumer = KafkaConsumer(
            topic or settings.KAFKA_TOPIC_AI_RESULTS,
            bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
            group_id=settings.KAFKA_CONSUMER_GROUP,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )
        try:
            outcomes = consumer.run(kafka_consumer, max_messages=max_messages, timeout=timeout, stop=stop)
        finally:
            kafka_consumer.close()
        summary = ", ".join(f"{name} {count}" for name, count in sorted(outcomes.items())) or "no messages"
        self.stdout.write(summary)
