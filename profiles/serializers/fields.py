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
        # Walked without recursion first: DRF's own check (json.dumps) would raise
        # RecursionError, a 500, on a deeply nested value.
        depth, has_nul = _shape(data)
        if depth > MAX_DEPTH:
            raise serializers.ValidationError(f"Must not be nested more than {MAX_DEPTH} levels deep.")
        if has_nul:
            raise serializers.ValidationError("Must not contain NUL characters.")
        value = super().to_internal_value(data)
        if self.object_only and not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except ValueError:
            raise serializers.ValidationError("Must be plain JSON (no NaN or Infinity).") from None
        if len(text.encode("utf-8")) > self.max_bytes:
            raise serializers.ValidationError(f"Must be at most {self.max_bytes} bytes as JSON.")
        return value


MAX_DEPTH = 32


def _shape(value: Any) -> tuple[int, bool]:
    """How deep a parsed JSON value nests, and whether any string in it holds a NUL."""
    deepest, has_nul = 0, False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            has_nul = has_nul or "\x00" in item
        elif isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                break
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest, has_nul
