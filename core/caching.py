"""Calling the cache when it may be down: a failure is logged and reported, never raised."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

FAILED = object()  # what `safe_call` returns when the cache raised


def safe_call(operation: str, func: Any, *args: Any, **kwargs: Any) -> Any:
    """`func(*args, **kwargs)`, or `FAILED` if the cache raised.

    The cache is an accelerator: callers decide what a failure means (a miss,
    never "all clear").
    """
    try:
        return func(*args, **kwargs)
    except Exception:
        logger.warning("cache %s failed", operation, exc_info=True)
        return FAILED
