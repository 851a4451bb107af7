"""Fields for client-supplied values: finite numbers, size-limited JSON (chat metadata, quiz answers)."""

from __future__ import annotations

import json
import math
from typing import Any

from rest_framework import serializers


class FiniteFloatField(serializers.FloatField):
    """DRF's FloatField takes "nan" and "inf"; a score or a temperature must be a real number."""

    def to_internal_value(self, data: Any) -> float:
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("invalid")
        return float(value)


class LimitedJSONField(serializers.JSONField):
    """Any JSON (or only an object, with `object_only`), at most `max_bytes` as compact UTF-8 JSON.

    NUL characters are refused: PostgreSQL's jsonb cannot store `\\u0000`, and a
    database error there would be a 500 instead of a 400.
    """

    def __init__(self, *, max_bytes: int, object_only: bool = False, **kwargs: Any) -> None:
        self.max_bytes = max_bytes
        self.object_only = object_only
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if self.object_only and not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (ValueError, RecursionError):
            raise serializers.ValidationError("Must be plain JSON (no NaN, not nested too deeply).") from None
        if len(text.encode("utf-8")) > self.max_bytes:
            raise serializers.ValidationError(f"Must be at most {self.max_bytes} bytes as JSON.")
        if _has_nul(value):
            raise serializers.ValidationError("Must not contain NUL characters.")
        return value


def _has_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
