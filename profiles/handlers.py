"""The consumer's handlers owned by this app (imported from `ProfilesConfig.ready()`)."""

from __future__ import annotations

from typing import Any

from notifications.consumer import handles

from .services.processings import processing_result_store, processing_result_validate


# The payload is checked against its schema before the consumer opens a transaction: an invalid
# result is dead-lettered, never retried. What is left to raise here is the database.
@handles("processing_result", validate=processing_result_validate)
def processing_result(payload: dict[str, Any]) -> None:
    processing_result_store(**payload)
