"""The one rule for request bodies (API.md → Conventions), in the base of every serializer.

Every serializer of the project derives from `Serializer` or `ModelSerializer`
here (`core/tests/test_strict_bodies.py` holds them to it), so the rule
holds at every door, nested serializers included, without an endpoint
remembering it:

- a body field the serializer does not know is a 400 naming it:
  `{"<field>": ["Unknown field."]}`. DRF would drop it silently, and a typo,
  or an attempt to set `roles` or `is_admin`, would look like it worked;
- a read-only field that the resource's GET returns may be sent back
  unchanged and is ignored, so a client may send back what it read; with
  another value it is a 400 naming it ("This field is read-only."). The
  view says what GET returns with `current=` (the body, or a callable that
  makes it: it is called only when a body carries such a field); an update
  with an `instance` and no `current` compares against the instance's
  representation. Without either (a create), a read-only field is refused;
- a number field (integer, float, decimal) takes a number, not `true` or
  `false`: DRF's fields would read `true` as 1.

The checks run in `run_validation`, the one step every serializer's
validation passes through (a nested one's too), and their errors are
reported together with the fields' own. The OpenAPI schema says it too: every
request body of these serializers has `additionalProperties: false`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.settings import api_settings
from rest_framework.utils.encoders import JSONEncoder

UNKNOWN_FIELD = "Unknown field."
READ_ONLY_FIELD = "This field is read-only."
NUMBER_FIELDS = (serializers.IntegerField, serializers.FloatField, serializers.DecimalField)

#: What a view passes as `current`: the GET body, or a callable that makes it (None: there is none).
Current = Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None

_UNRESOLVED = object()
NON_FIELD_ERRORS = api_settings.NON_FIELD_ERRORS_KEY


def same_value(sent: Any, current: Any) -> bool:
    """Whether a value sent back is the one read: JSON equality (1 == 1.0, but true is not 1)."""
    if isinstance(sent, bool) or isinstance(current, bool):
        return type(sent) is type(current) and sent == current
    if isinstance(sent, Mapping) and isinstance(current, Mapping):
        return sent.keys() == current.keys() and all(same_value(sent[key], current[key]) for key in sent)
    if isinstance(sent, list) and isinstance(current, list):
        return len(sent) == len(current) and all(map(same_value, sent, current))
    return bool(sent == current)


def _as_json(value: Any) -> Any:
    # The body as a client read it: UUIDs, times and decimals as DRF renders them.
    return json.loads(json.dumps(value, cls=JSONEncoder))


def _bool_as_number(field: serializers.Field, value: Any) -> Any:
    """The error for `true`/`false` given to a number field (or a list of them), else None."""
    if isinstance(field, NUMBER_FIELDS) and isinstance(value, bool):
        return [field.error_messages["invalid"]]
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        errors = {index: _bool_as_number(field.child, item) for index, item in enumerate(value)}
        return {index: error for index, error in errors.items() if error} or None
    return None


class StrictMixin:
    # Unknown fields, read-only fields with another value, and booleans as numbers are 400s.
    # (Comments, not docstrings, on these bases: drf-spectacular would publish a docstring as the
    # description of every serializer that has none of its own.)

    fields: Any
    instance: Any
    parent: Any
    field_name: str | None

    def __init__(self, *args: Any, current: Current = None, **kwargs: Any) -> None:
        self._current_source = current
        self._current: Any = _UNRESOLVED
        super().__init__(*args, **kwargs)

    def current_representation(self) -> Mapping[str, Any] | None:
        """What the resource's GET answers (this part of it, for a nested serializer), or None."""
        if self._current is _UNRESOLVED:
            self._current = self._resolve_current()
        return self._current  # type: ignore[no-any-return]

    def _resolve_current(self) -> Mapping[str, Any] | None:
        parent = getattr(self, "parent", None)
        if self._current_source is None and isinstance(parent, StrictMixin):
            above = parent.current_representation()
            value = above.get(self.field_name or "") if above is not None else None
            return value if isinstance(value, Mapping) else None
        source = self._current_source
        if callable(source):
            source = source()
        if source is None and getattr(self, "instance", None) is not None:
            source = self.to_representation(self.instance)  # type: ignore[attr-defined]
        return _as_json(source) if source is not None else None

    def body_errors(self, data: Any) -> dict[str, Any]:
        """The errors of the body's field names and number values: {} when it has none."""
        if not isinstance(data, Mapping):
            return {}  # DRF's own check says what a body that is not an object is
        errors: dict[str, Any] = {}
        fields = self.fields
        for name in data:
            field = fields.get(name)
            if field is not None and not field.read_only:
                error = _bool_as_number(field, data[name])
                if error:
                    errors[name] = error
            else:
                error = self._read_back_error(name, data[name], declared=field is not None)
                if error:
                    errors[name] = [error]
        return errors

    def _read_back_error(self, name: str, value: Any, *, declared: bool) -> str | None:
        current = self.current_representation()
        if current is None or name not in current:
            return READ_ONLY_FIELD if declared else UNKNOWN_FIELD
        return None if same_value(value, current[name]) else READ_ONLY_FIELD

    def run_validation(self, data: Any = empty) -> Any:
        errors = self.body_errors(data)
        try:
            value = super().run_validation(data)  # type: ignore[misc]
        except serializers.ValidationError as exc:
            if not errors:
                raise
            detail = exc.detail if isinstance(exc.detail, dict) else {NON_FIELD_ERRORS: exc.detail}
            raise serializers.ValidationError({**detail, **errors}) from None
        if errors:
            raise serializers.ValidationError(errors)
        return value


class Serializer(StrictMixin, serializers.Serializer):  # type: ignore[type-arg]
    pass  # DRF's Serializer under the body rule: the base of every plain serializer of the project


class ModelSerializer(StrictMixin, serializers.ModelSerializer):  # type: ignore[type-arg]
    pass  # DRF's ModelSerializer under the body rule


class StrictBodySchema(OpenApiSerializerExtension):
    """In the OpenAPI schema, a request body of these serializers has `additionalProperties: false`."""

    target_class = StrictMixin
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_basic_serializer(self.target, direction)
        if direction == "request" and schema.get("type") == "object":
            schema["additionalProperties"] = False
        return schema
