from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from notifications.outbox import outbox_publish


class Command(BaseCommand):
    help = "Publish pending outbox events to Kafka: drain once and exit, or keep going with --loop."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true", help="keep publishing until stopped (SIGTERM)")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds with --loop")
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args: Any, loop: bool, interval: float, batch_size: int, **options: Any) -> None:
        stop = threading.Event()
        if loop:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
        total = 0
        while True:
            total += outbox_publish(batch_size=batch_size)
            if not loop or stop.wait(interval):
                break
        self.stdout.write(f"published {total} event(s)")
