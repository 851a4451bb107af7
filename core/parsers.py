"""Request body parsers that turn hostile input into a 400, never a 500.

DRF's own parsers are kept (subclassed, not rewritten); what they let through:
- JSON nested ~1,000 levels deep raises `RecursionError` inside `json.load`
  (the C decoder counts its depth against the recursion limit): a 400 here.
  Shallower nesting is parsed; the fields that accept free-form JSON bound
  their own depth (profiles' metadata: 32 levels) and say which field it was;
- `1e999` parses to an infinite float that the strict JSON renderer then
  refuses to write back (a 500 on the way out), and an integer of thousands
  of digits is refused by the interpreter with advice on its own settings:
  both are "a number is too large" here (no message names the implementation);
- "\\ud800" parses to a string that no database driver or renderer can encode.
- a JSON body sent as a form (`curl -d '{...}'` sends
  `application/x-www-form-urlencoded`) would be read as one field named after
  the whole text: a 400 saying the body is JSON and how to send it.
Bodies over `DATA_UPLOAD_MAX_MEMORY_SIZE` never reach a parser: Django raises
`RequestDataTooBig`, which `core.exceptions` answers with a 413.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from json import JSONDecodeError
from typing import Any

from django.http import QueryDict
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


#: The longest integer a JSON body may hold: far past any field's range, and short of the
#: interpreter's own limit on converting digits (whose error names its settings).
MAX_INTEGER_DIGITS = 1000
TOO_LARGE = "a number is too large"


class _Refused(ValueError):
    """A value of the body the API does not take; its message is the client's."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(TOO_LARGE)
    return value


def _no_constant(name: str) -> float:
    raise _Refused(f"{name} is not a JSON number")


def _bounded_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INTEGER_DIGITS:
        raise _Refused(f"{TOO_LARGE} (more than {MAX_INTEGER_DIGITS} digits)")
    return int(text)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser: too deep is a 400, and no infinite numbers or lone surrogates."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
            data = json.loads(
                text,
                parse_constant=_no_constant if self.strict else None,
                parse_float=_finite_float,
                parse_int=_bounded_int,
            )
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.", code="parse_error") from None
        except UnicodeDecodeError:
            raise ParseError(
                f"JSON parse error - the body is not valid {encoding}.", code="parse_error"
            ) from None
        except LookupError:
            raise ParseError(
                f"JSON parse error - unknown charset {encoding!r}.", code="parse_error"
            ) from None
        except _Refused as exc:
            raise ParseError(f"JSON parse error - {exc}.", code="parse_error") from None
        except JSONDecodeError as exc:  # where the text stops being JSON: the client's own coordinates
            raise ParseError(f"JSON parse error - {exc}", code="parse_error") from None
        except ValueError:  # anything else the decoder refuses: its message is not for the client
            raise ParseError("JSON parse error - the body is not valid JSON.", code="parse_error") from None
        problem = json_problem(data)
        if problem:
            raise ParseError(f"JSON parse error - {problem}.", code="parse_error")
        return data


FORM_HOLDS_JSON = (
    "The body could not be read: it is JSON, sent as a form (Content-Type: "
    "application/x-www-form-urlencoded, curl -d's default). Send it with "
    "Content-Type: application/json, or send a form (name=value&...)."
)


class FormParser(parsers.FormParser):
    """DRF's form parser, which knows a JSON body sent with the form's content type."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        body = stream.read()
        if body.lstrip()[:1] in (b"{", b"["):  # no form field name starts so
            raise ParseError(FORM_HOLDS_JSON, code="parse_error")
        encoding = get_encoding(parser_context or {})
        return QueryDict(body, encoding=encoding)


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser (Django's limits on field size, count and files apply)."""
