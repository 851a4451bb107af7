"""Every endpoint of the service, found by walking the URL resolver.

Tests that must hold for every endpoint (hostile bodies, response headers)
iterate over this list, so an endpoint added later is covered without
anyone remembering to add it to a test.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

SAMPLE_ID = str(uuid.UUID(int=0x5EED))
# Candidates for a path parameter, tried in order against its pattern.
_SAMPLES = (SAMPLE_ID, "1", "x", "yandex", "telegram")
_CONVERTER_SAMPLES = {"uuid": SAMPLE_ID, "int": "1", "slug": "x", "str": "x", "path": "1"}
_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<regex>(?:[^()]|\([^()]*\))*)\)")
_CONVERTER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


@dataclass(frozen=True)
class Endpoint:
    path: str
    pattern: str
    view: Any

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/v1/")

    @property
    def is_admin(self) -> bool:
        return self.path.startswith("/admin/")


def _sample_for(regex: str) -> str:
    for candidate in _SAMPLES:
        if re.fullmatch(regex, candidate):
            return candidate
    return SAMPLE_ID


def _concrete(pattern: str) -> str:
    """A path that the pattern (regex or route syntax) matches."""
    if pattern.startswith("^") or "(?P<" in pattern or pattern.endswith("$"):
        pattern = _GROUP.sub(lambda m: _sample_for(m.group("regex")), pattern)
        pattern = pattern.replace("^", "").replace("$", "").replace("/?", "").replace("\\", "")
        return pattern
    return _CONVERTER.sub(lambda m: _CONVERTER_SAMPLES.get(m.group("converter") or "str", "x"), pattern)


def _walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, URLPattern]]:
    found: list[tuple[str, URLPattern]] = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            found += _walk(entry.url_patterns, prefix + _concrete(str(entry.pattern)))
        else:
            found.append((prefix + _concrete(str(entry.pattern)), entry))
    return found


def all_endpoints() -> list[Endpoint]:
    """Each URL pattern once, as a concrete path that resolves to it."""
    endpoints: dict[str, Endpoint] = {}
    for path, entry in _walk(get_resolver().url_patterns):
        path = "/" + path.lstrip("/")
        try:
            resolve(path)
        except Resolver404:  # a pattern no sample fits: say so rather than skip it quietly
            raise AssertionError(f"no concrete path for the URL pattern {entry.pattern}") from None
        endpoints.setdefault(path, Endpoint(path, str(entry.pattern), entry.callback))
    return list(endpoints.values())
