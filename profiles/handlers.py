"""The consumer's handlers owned by this app (imported from `ProfilesConfig.ready()`)."""

from __future__ import annotations

from typing import Any

from notifications.consumer import handles

from .services.processings import processing_result_store


@handles("processing_result")
def processing_result(payload: dict[str, Any]) -> None:
    # Everything that is wrong with a result is logged and ignored inside; nothing raises here
    # for a bad payload, so the consumer's retries are left for real failures (the database).
    processing_result_store(payload=payload)
