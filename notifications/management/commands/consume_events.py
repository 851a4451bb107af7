from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications import consumer

logger = logging.getLogger(__name__)


class KafkaDeadLetters:
    """Sends dead-letter copies to `topic` and waits for each to be stored.

    Its producer is made on the first copy (most runs never need one), with the outbox relay's
    bounds, so that a broker that is away fails a copy within seconds rather than hanging.
    """

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.producer: Any = None

    def __call__(self, letter: consumer.DeadLetter) -> None:
        if self.producer is None:
            from kafka import KafkaProducer

            self.producer = KafkaProducer(
                bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
                acks="all",
                retries=5,
                max_block_ms=settings.KAFKA_MAX_BLOCK_MS,
                bootstrap_timeout_ms=settings.KAFKA_MAX_BLOCK_MS,
                request_timeout_ms=settings.KAFKA_REQUEST_TIMEOUT_MS,
            )
        future = self.producer.send(self.topic, key=letter.key, value=letter.value, headers=letter.headers)
        # Waited for: the original's offset is committed only once its copy is known to be stored.
        future.get(timeout=(settings.KAFKA_MAX_BLOCK_MS + settings.KAFKA_REQUEST_TIMEOUT_MS) / 1000)

    def close(self) -> None:
        if self.producer is not None:
            try:
                self.producer.close(timeout=5)
            except Exception as exc:  # on the way out: must not hide why the command stopped
                logger.warning("closing the dead-letter producer: %s", exc)
            self.producer = None


class Command(BaseCommand):
    help = (
        "Consume events for this service (topic KAFKA_TOPIC_AI_RESULTS) until stopped; a message "
        "that cannot be handled is copied to KAFKA_TOPIC_AI_RESULTS_DLQ."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--max-messages", type=int, default=None, help="stop after this many messages")
        parser.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
        parser.add_argument("--topic", default=None, help="override KAFKA_TOPIC_AI_RESULTS")

    def handle(
        self, *args: Any, max_messages: int | None, timeout: float | None, topic: str | None, **options: Any
    ) -> None:
        if not settings.KAFKA_BOOTSTRAP_SERVERS:
            raise CommandError("KAFKA_BOOTSTRAP_SERVERS is not set: there is no broker to consume from.")
        topic = topic or settings.KAFKA_TOPIC_AI_RESULTS
        dead_letter_topic = settings.KAFKA_TOPIC_AI_RESULTS_DLQ
        if not dead_letter_topic or dead_letter_topic == topic:
            # Copies sent back to the topic they came from would be read, and copied, forever.
            raise CommandError(
                f"KAFKA_TOPIC_AI_RESULTS_DLQ must name a topic other than the one consumed ({topic!r})."
            )
        from kafka import KafkaConsumer

        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        kafka_consumer = KafkaConsumer(
            topic,
            bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
            group_id=settings.KAFKA_CONSUMER_GROUP,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )
        dead_letters = KafkaDeadLetters(dead_letter_topic)
        try:
            outcomes = consumer.run(
                kafka_consumer,
                dead_letter=dead_letters,
                max_messages=max_messages,
                timeout=timeout,
                stop=stop,
            )
        except consumer.DeadLetterUnavailable as exc:
            # Stopping is all that is left: the broker that took no copy holds the stream too. The
            # message is read again on the next start.
            raise CommandError(f"stopped: {exc}") from exc
        finally:
            kafka_consumer.close()
            dead_letters.close()
        summary = ", ".join(f"{name} {count}" for name, count in sorted(outcomes.items())) or "no messages"
        self.stdout.write(summary)
