"""The type of the ids services take.

A UUID, or its text: ids arrive as URL segments, token claims and task
arguments (text) as often as from model instances (UUID). The database
lookup accepts both; a malformed one is the domain's `NotFound`. It lives in
`config`, the layer every app may import, so `notifications` types its ids too.
"""

from __future__ import annotations

from typing import TypeAlias
from uuid import UUID

Id: TypeAlias = UUID | str
