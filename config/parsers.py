"""Request body parsers that turn hostile input into a 400, never a 500.

DRF's own parsers are kept (subclassed, not rewritten); what they let through:
- JSON nested ~1,000 levels deep raises `RecursionError` inside `json.load`
  (the C decoder counts its depth against the recursion limit): a 400 here.
  Shallower nesting is parsed; the fields that accept free-form JSON bound
  their own depth (profiles' metadata: 32 levels) and say which field it was;
- `1e999` parses to an infinite float that the strict JSON renderer then
  refuses to write back (a 500 on the way out);
- "\\ud800" parses to a string that no database driver or renderer can encode.
Bodies over `DATA_UPLOAD_MAX_MEMORY_SIZE` never reach a parser: Django raises
`RequestDataTooBig`, which `config.exceptions` answers with a 413.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import get_encoding  # type: ignore[attr-defined]
from rest_framework.utils import json


def json_problem(data: Any) -> str | None:
    """Why `data` is refused, or None: a string that is not valid Unicode (a lone
    surrogate such as "\\ud800": JSON allows the escape, but it cannot be stored
    or written back as UTF-8). Iterative: no recursion, whatever the depth.
    """
    stack: list[Any] = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if not value.isascii() and not _encodable(value):
                return "a string is not valid Unicode (a lone surrogate)"
        elif isinstance(value, Mapping):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser: too deep is a 400, and no infinite numbers or lone surrogates."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
            data = json.loads(
                text,
                parse_constant=json.strict_constant if self.strict else None,
                parse_float=_finite_float,
            )
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.", code="parse_error") from None
        except (ValueError, LookupError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise ParseError(f"JSON parse error - {exc}", code="parse_error") from None
        problem = json_problem(data)
        if problem:
            raise ParseError(f"JSON parse error - {problem}.", code="parse_error")
        return data


class FormParser(parsers.FormParser):
    """DRF's form parser (kept beside the JSON one so views import both from here)."""


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser (Django's limits on field size, count and files apply)."""
