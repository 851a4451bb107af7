"""`/api/asyncapi.json`: the AsyncAPI 3.0 document of every Kafka message, generated from the registry.

Nothing here is written by hand about an event: the channels are the topics (`event_catalog.TOPICS`,
their addresses the topic settings in force), each message its event's name, key and payload
schema, and the operations say what the service does on each channel: `send` for what it
publishes, `receive` for what `consume_events` reads. The CloudEvents 1.0 headers are a message
trait (AsyncAPI's way of sharing headers between messages): required on what the service sends,
optional on what it receives.

No `servers`: the brokers' addresses belong to each deployment, and this document is public.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.public_documents import public_document

from .event_catalog import EVENTS, TOPICS, UUID, Event, Schema

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
CLOUDEVENTS_TRAIT = "cloudEvents"
CLOUDEVENTS_OPTIONAL_TRAIT = "cloudEventsOptional"


def _cloudevents_headers(*, required: bool) -> Schema:
    """The CloudEvents 1.0 Kafka binding, binary mode: the event's attributes as `ce_*` headers."""
    properties: dict[str, Schema] = {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {**UUID, "description": "The event's id: the value's `event_id`."},
        "ce_source": {"type": "string", "const": settings.EVENTS_SOURCE, "description": "`EVENTS_SOURCE`."},
        "ce_type": {"type": "string", "description": "The event name: the message's `name` and Kafka key."},
        "ce_time": {"type": "string", "format": "date-time", "description": "The value's `occurred_at`."},
        "ce_subject": {"type": "string", "description": "The `user_id` of the value, where it has one."},
        "content-type": {"type": "string", "const": "application/json"},
    }
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"]
    return schema


def _message(event: Event) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": event.name,
        "title": event.name,
        "summary": event.summary,
        "payload": {"$ref": f"#/components/schemas/{event.name}"},
        "bindings": {"kafka": {"key": event.key_schema(), "bindingVersion": KAFKA_BINDING_VERSION}},
    }
    if event.cloudevents is not None:
        message["contentType"] = "application/json"
        trait = CLOUDEVENTS_TRAIT if event.cloudevents == "required" else CLOUDEVENTS_OPTIONAL_TRAIT
        message["traits"] = [{"$ref": f"#/components/messageTraits/{trait}"}]
    if event.headers is not None:
        message["headers"] = event.headers
    return message


def asyncapi_document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    for topic in TOPICS:
        events = [event for event in EVENTS if event.topic is topic]
        channels[topic.channel] = {
            "address": topic.address(),
            "title": topic.address(),
            "description": f"{topic.description} The topic is the setting `{topic.setting}`.",
            "messages": {event.name: {"$ref": f"#/components/messages/{event.name}"} for event in events},
            "bindings": {"kafka": {"topic": topic.address(), "bindingVersion": KAFKA_BINDING_VERSION}},
        }
    operations = {
        f"{event.action}_{event.name}": {
            "action": event.action,
            "channel": {"$ref": f"#/channels/{event.topic.channel}"},
            "summary": event.summary,
            "messages": [{"$ref": f"#/channels/{event.topic.channel}/messages/{event.name}"}],
        }
        for event in EVENTS
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": f"{settings.SPECTACULAR_SETTINGS['TITLE']}: events",
            "version": settings.SPECTACULAR_SETTINGS["VERSION"],
            "description": (
                "The Kafka messages the user service sends and receives. Delivered at least once "
                "through a transactional outbox: drop duplicates by `event_id`. Key: the event "
                "name. Value: a JSON object, `event_id` and `occurred_at` plus the event's fields; "
                "fields may be added, so ignore those you do not know. Every message sent is also a "
                "CloudEvent 1.0 in the Kafka binding's binary mode (the `ce_*` headers). The HTTP "
                "API is described by the OpenAPI schema at `/api/schema/`."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {event.name: event.schema for event in EVENTS},
            "messages": {event.name: _message(event) for event in EVENTS},
            "messageTraits": {
                CLOUDEVENTS_TRAIT: {
                    "headers": _cloudevents_headers(required=True),
                    "description": "CloudEvents 1.0, Kafka protocol binding, binary content mode.",
                },
                CLOUDEVENTS_OPTIONAL_TRAIT: {
                    "headers": _cloudevents_headers(required=False),
                    "description": "CloudEvents 1.0 headers, accepted when present: the type is "
                    "`ce_type` where there is one (else the key), duplicates are dropped by "
                    "`event_id`, else `ce_id`.",
                },
            },
        },
    }


def asyncapi_view(request: HttpRequest) -> HttpResponse:
    """`/api/asyncapi.json`, beside `/api/schema/`: public, cacheable, any origin."""
    return public_document(request, asyncapi_document())
