"""Helpers of the notification and event tests: notification_send() with its after-commit work.

The Kafka clients (topic names, a topic reader) are in testing/kafka.py; the two names below
stay importable from here for the test modules written before it.
"""

from __future__ import annotations

from typing import Any

from django.test import TestCase

from notifications import services
from testing.kafka import read_topic, unique_name

__all__ = ["notify_now", "read_topic", "unique_name"]


def notify_now(**kwargs: Any) -> Any:
    """`services.notify` in a transaction that commits: its after-commit work (cache, email) runs."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return services.notification_send(**kwargs)
