"""Every Kafka message the service sends or receives, declared once: name, topic, key, payload schema.

This is the contract other services read by machine: `/api/asyncapi.json` is generated from it
(`notifications.asyncapi`), the tests check every event the code emits against it
(`notifications/tests/event_contract.py`) and `docs/events.md`'s tables against it, and the
consumer's `processing_result` check is held to its receive side.

The schemas are JSON Schema (draft-07, AsyncAPI 3.0's default format), the one definition of each
payload: a dict here, not a class, because a JSON Schema is what is published and what is
checked, and nothing here builds the payloads (the services do, where the values are). They are
open (no `additionalProperties: false`): API.md lets fields be added, so a consumer must not
refuse one it does not know. The tests hold the service itself to the declared fields.

This module imports no other app: the events of `accounts` and `profiles` are declared here as
data, as the messages of the topics `notifications` publishes. An event that lands with a later
change (the MFA and email events) is declared here in the same change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from django.conf import settings

from core.metrics import DEAD_LETTER_REASONS

Schema = dict[str, Any]

# --- the building blocks of the payloads ---------------------------------------------------------

UUID: Schema = {
    "type": "string",
    "format": "uuid",
    "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
}
TIMESTAMP: Schema = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC."}
UUIDS: Schema = {"type": "array", "items": UUID}
NAMES: Schema = {"type": "array", "items": {"type": "string"}}
PROCESSING_STATUS: Schema = {"type": "string", "enum": ["done", "failed"]}
SCORE: Schema = {"type": ["number", "null"], "minimum": 0, "maximum": 100}

#: What every message the outbox sends carries besides its event's own fields (API.md, Events).
ENVELOPE: dict[str, Schema] = {
    "event_id": {**UUID, "description": "Unique per event (also `ce_id`): consumers drop duplicates by it."},
    "occurred_at": {**TIMESTAMP, "description": "When the change happened (also `ce_time`)."},
}


def payload(
    fields: Mapping[str, Schema],
    *,
    required: tuple[str, ...] | None = None,
    envelope: bool = True,
    **keywords: Any,
) -> Schema:
    """An object schema: the envelope's fields (required), then `fields`, all required unless
    `required` names the ones that are; `keywords` are further JSON Schema keywords."""
    properties = {**(ENVELOPE if envelope else {}), **fields}
    needed = [*(ENVELOPE if envelope else ()), *(fields if required is None else required)]
    return {"type": "object", "properties": properties, "required": needed, **keywords}


# --- topics ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    """A Kafka topic, named by a setting; `channel` is its stable id in the AsyncAPI document."""

    setting: str
    channel: str
    description: str

    def address(self) -> str:
        return str(getattr(settings, self.setting))


DATA = Topic(
    "KAFKA_TOPIC_DATA",
    "data",
    "Changes to accounts and to what users keep here, for the platform's services.",
)
AI_REQUESTS = Topic("KAFKA_TOPIC_AI_REQUESTS", "aiRequests", "Requests to the AI handler.")
AI_RESULTS = Topic("KAFKA_TOPIC_AI_RESULTS", "aiResults", "The AI handler's answers.")
AI_RESULTS_DLQ = Topic(
    "KAFKA_TOPIC_AI_RESULTS_DLQ",
    "aiResultsDeadLetters",
    "Copies of the messages of the results topic that could not be handled, with the reason.",
)
TOPICS = (DATA, AI_REQUESTS, AI_RESULTS, AI_RESULTS_DLQ)

# --- events ---------------------------------------------------------------------------------------

SEND: Literal["send"] = "send"
RECEIVE: Literal["receive"] = "receive"


@dataclass(frozen=True)
class Event:
    """One kind of message: its name (the Kafka key and `ce_type`), topic and payload schema.

    `outbox`: sent through `event_emit` (and so with the envelope and the CloudEvents headers).
    `cloudevents`: whether its CloudEvents headers are always there (`required`), may be there
    (`optional`: what the consumer accepts), or are not the point (None: the dead-letter copy,
    which keeps whatever the original had).
    """

    name: str
    topic: Topic
    summary: str
    schema: Schema
    action: Literal["send", "receive"] = SEND
    outbox: bool = True
    cloudevents: Literal["required", "optional"] | None = "required"
    key: Schema = field(default_factory=dict)
    headers: Schema | None = None

    def key_schema(self) -> Schema:
        return self.key or {"type": "string", "const": self.name, "description": "The event name."}


def _document_events(kind: str, plural: str) -> tuple[Event, Event]:
    """`new_<kind>` and `delete_<kind>`: resumes and requirements are emitted by one code path."""
    return (
        Event(
            f"new_{kind}",
            DATA,
            f"{plural.capitalize()} created.",
            payload({"user_id": UUID, f"{kind}_id": UUID, "created_at": TIMESTAMP}),
        ),
        Event(
            f"delete_{kind}",
            DATA,
            f"{plural.capitalize()} deleted, and their processings with them.",
            payload({"user_id": UUID, f"{kind}_id": UUID, "processing_ids": UUIDS}),
        ),
    )


_NEW_RESUME, _DELETE_RESUME = _document_events("resume", "a resume is")
_NEW_REQUIREMENTS, _DELETE_REQUIREMENTS = _document_events("requirements", "requirements are")

DEAD_LETTER_HEADERS: Schema = {
    "type": "object",
    "description": "The original message's headers are kept (`dlq_*` and `ce_dlq*` ones replaced), and these added.",
    "properties": {
        "dlq_reason": {"type": "string", "enum": list(DEAD_LETTER_REASONS)},
        "dlq_detail": {
            "type": "string",
            "maxLength": 300,
            "description": "Why, in words; outside values repr'd.",
        },
        "dlq_original_topic": {"type": "string"},
        "dlq_original_partition": {"type": "string", "pattern": "^[0-9]+$"},
        "dlq_original_offset": {"type": "string", "pattern": "^[0-9]+$"},
        "dlq_truncated": {
            "type": "string",
            "description": "What was cut to fit the copy under 1 MiB: `key`, `headers`, `value:<original size>`.",
        },
        "ce_dlqreason": {
            "type": "string",
            "enum": list(DEAD_LETTER_REASONS),
            "description": "The reason again, as a CloudEvents extension attribute (`dlqreason`), on the "
            "copy of a message that was a CloudEvent: a CloudEvents SDK reads the copy with it.",
        },
    },
    "required": [
        "dlq_reason",
        "dlq_detail",
        "dlq_original_topic",
        "dlq_original_partition",
        "dlq_original_offset",
    ],
}

EVENTS: tuple[Event, ...] = (
    Event(
        "new_user",
        DATA,
        "An account was created, by any door (registration, social login, an administrator, the commands).",
        payload(
            {
                "user_id": UUID,
                "username": {"type": "string"},
                "full_name": {"type": "string"},
                "email": {
                    "type": "string",
                    "description": "Empty for an account made by a login without one.",
                },
                "created_at": TIMESTAMP,
                "email_verified": {
                    "type": "boolean",
                    "description": "Whether the address is verified already.",
                },
            },
            required=("user_id", "username", "full_name", "email", "created_at"),
        ),
    ),
    Event(
        "user_updated",
        DATA,
        "The owner or an administrator changed the account: `user_id` and the fields that changed.",
        payload(
            {
                "user_id": UUID,
                "username": {"type": "string"},
                "email": {"type": "string"},
                "full_name": {"type": "string"},
                "is_active": {"type": "boolean"},
                "is_superuser": {"type": "boolean"},
                "email_verified": {"type": "boolean"},
            },
            required=("user_id",),
            minProperties=4,  # the envelope, user_id and at least one change
        ),
    ),
    Event(
        "user_deleted",
        DATA,
        "An account was deleted: soft (`deleted_at`, restorable) or for good (`hard: true`).",
        payload(
            {"user_id": UUID, "deleted_at": TIMESTAMP, "hard": {"type": "boolean", "const": True}},
            required=("user_id",),
            oneOf=[{"required": ["deleted_at"]}, {"required": ["hard"]}],
        ),
    ),
    Event("user_restored", DATA, "A deleted account was restored.", payload({"user_id": UUID})),
    Event(
        "mfa_enabled",
        DATA,
        "A user turned two-factor authentication on: the first code confirmed the authenticator.",
        payload({"user_id": UUID, "method": {"type": "string", "enum": ["totp"]}}),
    ),
    Event(
        "mfa_disabled",
        DATA,
        "Two-factor authentication was turned off: by the user (`owner`), an administrator in the "
        "Django admin (`administrator`) or `manage.py mfa_reset` (`command`).",
        payload({"user_id": UUID, "by": {"type": "string", "enum": ["owner", "administrator", "command"]}}),
    ),
    Event(
        "recovery_code_used",
        DATA,
        "A recovery code was spent at a login (the user is told too).",
        payload({"user_id": UUID, "recovery_codes_left": {"type": "integer", "minimum": 0}}),
    ),
    Event(
        "role_changed",
        DATA,
        "The roles of a user changed (an approved request, an administrator, a renamed role).",
        payload({"user_id": UUID, "roles": NAMES, "previous_roles": NAMES}),
    ),
    Event(
        "llm_settings_changed",
        DATA,
        "A user changed their LLM settings: the purposes whose settings changed.",
        payload({"user_id": UUID, "purposes": NAMES}),
    ),
    _NEW_RESUME,
    _NEW_REQUIREMENTS,
    _DELETE_RESUME,
    _DELETE_REQUIREMENTS,
    Event(
        "delete_processing",
        DATA,
        "A processing was deleted.",
        payload({"user_id": UUID, "processing_id": UUID}),
    ),
    Event(
        "new_processing",
        DATA,
        "The AI handler's result for a processing was stored.",
        payload({"processing_id": UUID, "user_id": UUID, "status": PROCESSING_STATUS, "score": SCORE}),
    ),
    Event(
        "new_request",
        AI_REQUESTS,
        "A processing was queued: the AI handler compares the resume with the requirements.",
        payload(
            {
                "processing_id": UUID,
                "user_id": UUID,
                "resume_id": UUID,
                "requirements_id": UUID,
                "resume_text": {"type": "string"},
                "requirements_text": {"type": "string"},
            }
        ),
    ),
    Event(
        "processing_result",
        AI_RESULTS,
        "The AI handler's answer to a `new_request`: stored on the processing, the user notified, "
        "`new_processing` emitted. Duplicates (by `event_id`, else `ce_id`) and unknown ids are ignored.",
        payload(
            {
                "event_id": {
                    "type": "string",
                    "description": "Optional: duplicates are dropped by it, else by `ce_id`.",
                },
                "processing_id": UUID,
                "status": PROCESSING_STATUS,
                "score": {**SCORE, "description": "A finite number from 0 to 100, or null."},
                "result": {
                    "description": "Any JSON value, at most `PROCESSING_RESULT_MAX_BYTES` (262144 by "
                    "default) serialized; a bigger one is dead-lettered as `invalid`."
                },
            },
            required=("processing_id", "status"),
            envelope=False,
        ),
        action=RECEIVE,
        outbox=False,
        cloudevents="optional",
    ),
    Event(
        "dead_letter",
        AI_RESULTS_DLQ,
        "A copy of a message of the results topic that could not be handled: its key, value and "
        "headers as they came (cut to fit 1 MiB, which `dlq_truncated` says), and why.",
        {"description": "The original value, whatever it was (not necessarily JSON)."},
        outbox=False,
        cloudevents=None,
        key={"description": "The original key (at most 1 KiB)."},
        headers=DEAD_LETTER_HEADERS,
    ),
)

BY_NAME: dict[str, Event] = {event.name: event for event in EVENTS}
#: What `event_emit` may be called with.
EMITTED: dict[str, Event] = {event.name: event for event in EVENTS if event.outbox}


def event(name: str) -> Event | None:
    return BY_NAME.get(name)
