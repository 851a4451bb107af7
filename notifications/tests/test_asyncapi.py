"""One event registry, one AsyncAPI document (issue 25).

- `/api/asyncapi.json` validates against the AsyncAPI 3.0 JSON Schema (vendored, see
  `asyncapi/README.md`), and describes every registered event on its topic.
- Every event the code emits is registered, and its payloads validate (statically here; at run
  time for the whole suite by `event_contract.py`).
- The consumer's check of `processing_result` accepts what the document's receive side allows and
  refuses what it does not; `docs/events.md`'s tables say what the registry says.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from notifications import consumer, event_catalog
from notifications.asyncapi import asyncapi_document
from notifications.consumer import InvalidMessage
from notifications.tests.event_contract import payload_problems

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI_SCHEMA = json.loads((Path(__file__).parent / "asyncapi" / "asyncapi-3.0.0.schema.json").read_text())
CE_HEADERS = {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "content-type"}


def problems_of(document: dict) -> list[str]:
    validator = Draft7Validator(ASYNCAPI_SCHEMA)
    return [f"{list(error.path)}: {error.message[:200]}" for error in validator.iter_errors(document)]


@pytest.fixture
def document(client) -> dict:
    response = client.get("/api/asyncapi.json")
    assert response.status_code == 200
    return response.json()


# --- the document ------------------------------------------------------------------------------


def test_the_document_validates_against_the_asyncapi_3_schema(document):
    assert document["asyncapi"] == "3.0.0"
    assert problems_of(document) == []


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d["operations"]["send_new_user"].pop("action"),
        lambda d: d["operations"]["send_new_user"].update(action="publish"),  # AsyncAPI 2's word
        lambda d: d["components"]["messages"]["new_user"]["bindings"]["kafka"].update(bindingVersion="9"),
        lambda d: d["channels"]["data"].update(topic="x"),
    ],
    ids=["no-action", "v2-action", "bad-binding", "unknown-field"],
)
def test_the_schema_check_catches_a_broken_document(document, break_it):
    broken = copy.deepcopy(document)
    break_it(broken)
    assert problems_of(broken)


def test_the_document_is_public_cacheable_and_open_to_every_origin(client):
    response = client.get("/api/asyncapi.json")

    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Cache-Control"] == "public, max-age=300"


def test_every_registered_event_is_a_message_of_its_topic_with_its_operation(document, settings):
    for event in event_catalog.EVENTS:
        channel = document["channels"][event.topic.channel]
        assert channel["address"] == getattr(settings, event.topic.setting)
        assert channel["messages"][event.name] == {"$ref": f"#/components/messages/{event.name}"}
        operation = document["operations"][f"{event.action}_{event.name}"]
        assert operation["action"] == event.action
        assert operation["channel"] == {"$ref": f"#/channels/{event.topic.channel}"}
        message = document["components"]["messages"][event.name]
        assert message["payload"] == {"$ref": f"#/components/schemas/{event.name}"}
        assert document["components"]["schemas"][event.name] == event.schema
        assert "key" in message["bindings"]["kafka"]
    sent = {name for name, op in document["operations"].items() if op["action"] == "send"}
    assert {f"send_{name}" for name in event_catalog.EMITTED} <= sent
    assert document["operations"]["receive_processing_result"]["action"] == "receive"


def test_channels_follow_the_topic_settings(client, settings):
    settings.KAFKA_TOPIC_DATA, settings.KAFKA_TOPIC_AI_RESULTS = "data-here", "results-here"
    document = client.get("/api/asyncapi.json").json()

    assert document["channels"]["data"]["address"] == "data-here"
    assert document["channels"]["data"]["bindings"]["kafka"]["topic"] == "data-here"
    assert document["channels"]["aiResults"]["address"] == "results-here"


def test_the_key_of_each_outbox_event_is_its_name(document):
    for name in event_catalog.EMITTED:
        key = document["components"]["messages"][name]["bindings"]["kafka"]["key"]
        assert key["const"] == name


def test_the_cloudevents_headers_are_a_trait_required_on_what_is_sent_optional_on_what_is_received(
    document, settings
):
    traits = document["components"]["messageTraits"]
    sent, received = traits["cloudEvents"]["headers"], traits["cloudEventsOptional"]["headers"]
    assert set(sent["properties"]) == set(received["properties"]) == CE_HEADERS
    assert set(sent["required"]) == CE_HEADERS - {"ce_subject"}  # only where there is a user
    assert "required" not in received
    assert sent["properties"]["ce_source"]["const"] == settings.EVENTS_SOURCE
    messages = document["components"]["messages"]
    for name in event_catalog.EMITTED:
        assert messages[name]["traits"] == [{"$ref": "#/components/messageTraits/cloudEvents"}]
    assert messages["processing_result"]["traits"] == [
        {"$ref": "#/components/messageTraits/cloudEventsOptional"}
    ]


def test_the_dead_letter_copy_is_described_with_its_reason_headers(document):
    message = document["components"]["messages"]["dead_letter"]
    assert set(message["headers"]["properties"]["dlq_reason"]["enum"]) == set(consumer.DEAD_LETTER_REASONS)
    assert consumer.DEAD_LETTER_CE_REASON in message["headers"]["properties"]
    assert document["operations"]["send_dead_letter"]["channel"] == {
        "$ref": "#/channels/aiResultsDeadLetters"
    }


# --- every emitted event is registered --------------------------------------------------------------


def emitted_names() -> set[str]:
    """The event names the code passes to `event_emit` / `event_fields`, read from the source."""
    from profiles.models import Requirements, Resume

    names: set[str] = set()
    for app in ("accounts", "profiles", "notifications"):
        for path in (ROOT / app).rglob("*.py"):
            if "tests" in path.parts or "migrations" in path.parts:
                continue
            text = path.read_text()
            names |= set(re.findall(r"event_(?:emit|fields)\(\s*name=\"(\w+)\"", text))
            names |= set(re.findall(r"^EVENT_\w+ = \"(\w+)\"", text, re.M))
            # `name=f"new_{model.kind}"`: one code path for resumes and requirements.
            for template in re.findall(
                r"event_(?:emit|fields)\(\s*name=f\"(\w*)\{model\.kind\}(\w*)\"", text
            ):
                names |= {f"{template[0]}{model.kind}{template[1]}" for model in (Resume, Requirements)}
    return names


def test_every_event_name_the_code_emits_is_registered():
    names = emitted_names()
    # The ones the issue lists, found by the scan, so that it cannot silently find nothing.
    assert {
        "new_user", "user_updated", "user_deleted", "user_restored", "role_changed", "new_resume",
        "new_requirements", "delete_requirements", "delete_processing", "new_processing",
        "llm_settings_changed", "new_request",
    } <= names  # fmt: skip
    assert sorted(names - set(event_catalog.EMITTED)) == []


def test_the_contract_check_refuses_an_unregistered_event_and_a_payload_that_breaks_its_schema():
    good = {
        "event_id": str(uuid.uuid4()),
        "occurred_at": "2026-12-07T10:00:00.123456+00:00",
        "user_id": str(uuid.uuid4()),
        "roles": ["user"],
        "previous_roles": [],
    }
    assert payload_problems("role_changed", good) == []
    assert payload_problems("role_changed", good, topic="uploading_data") == []
    assert payload_problems("role_change", good)  # a typo
    assert payload_problems("role_changed", {**good, "roles": "user"})
    assert payload_problems("role_changed", {**good, "user_id": 42})
    assert payload_problems("role_changed", {**good, "occurred_at": "yesterday"})
    assert payload_problems("role_changed", {**good, "surprise": 1})  # an undeclared field
    assert payload_problems("role_changed", {k: v for k, v in good.items() if k != "event_id"})
    assert payload_problems("role_changed", good, topic="AI_handler")
    assert payload_problems("processing_result", good)  # received, never emitted


@pytest.mark.parametrize(
    ("name", "fields", "ok"),
    [
        ("user_deleted", {"deleted_at": "2026-12-07T10:00:00Z"}, True),
        ("user_deleted", {"hard": True}, True),
        ("user_deleted", {}, False),
        ("user_deleted", {"deleted_at": "2026-12-07T10:00:00Z", "hard": True}, False),
        ("user_updated", {"is_active": False}, True),
        ("user_updated", {}, False),  # a change of nothing
        ("new_processing", {"processing_id": str(uuid.uuid4()), "status": "done", "score": 101}, False),
    ],
)
def test_the_schemas_say_what_each_event_needs(name, fields, ok):
    body = {
        "event_id": str(uuid.uuid4()),
        "occurred_at": "2026-12-07T10:00:00Z",
        "user_id": str(uuid.uuid4()),
    }
    assert (payload_problems(name, {**body, **fields}) == []) is ok


# --- the receive side and the consumer agree -----------------------------------------------------

PROCESSING_ID = "3f2c6c1e-8a52-4b8e-9a36-0f4d1b2a7c55"
ACCEPTED = [
    {"processing_id": PROCESSING_ID, "status": "done", "score": 87.5, "result": {"summary": "fits"}},
    {"processing_id": PROCESSING_ID, "status": "failed", "score": None, "result": None},
    {"processing_id": PROCESSING_ID, "status": "done"},
    {"processing_id": PROCESSING_ID, "status": "done", "score": 0, "result": ["a", 1, True]},
    {"processing_id": PROCESSING_ID, "status": "done", "score": 100, "event_id": "anything-unique"},
]
REFUSED = [
    {"status": "done"},
    {"processing_id": "not-a-uuid", "status": "done"},
    {"processing_id": 42, "status": "done"},
    {"processing_id": PROCESSING_ID},
    {"processing_id": PROCESSING_ID, "status": "finished"},
    {"processing_id": PROCESSING_ID, "status": ["done"]},
    {"processing_id": PROCESSING_ID, "status": "done", "score": -1},
    {"processing_id": PROCESSING_ID, "status": "done", "score": 100.5},
    {"processing_id": PROCESSING_ID, "status": "done", "score": "90"},
    {"processing_id": PROCESSING_ID, "status": "done", "score": True},
]


def receive_schema_accepts(body: dict) -> bool:
    schema = asyncapi_document()["components"]["schemas"]["processing_result"]
    return Draft7Validator(schema).is_valid(body)


def consumer_accepts(body: dict) -> bool:
    validate = consumer.VALIDATORS["processing_result"]
    try:
        validate(body)
    except InvalidMessage:
        return False
    return True


@pytest.mark.parametrize("body", ACCEPTED)
def test_what_the_receive_side_allows_the_consumer_accepts(body):
    assert receive_schema_accepts(body)
    assert consumer_accepts(body)


@pytest.mark.parametrize("body", REFUSED)
def test_what_the_receive_side_refuses_the_consumer_refuses(body):
    assert not receive_schema_accepts(body)
    assert not consumer_accepts(body)


def test_the_receive_side_names_the_size_limit_the_consumer_applies(settings):
    result = asyncapi_document()["components"]["schemas"]["processing_result"]["properties"]["result"]
    assert "PROCESSING_RESULT_MAX_BYTES" in result["description"]
    settings.PROCESSING_RESULT_MAX_BYTES = 10
    assert not consumer_accepts({"processing_id": PROCESSING_ID, "status": "done", "result": "x" * 20})


# --- the events page says what the registry says --------------------------------------------------


def documented_events() -> dict[str, tuple[str, set[str]]]:
    """Per event in a table of docs/events.md: (the topic setting of its section, its field names)."""
    text = (ROOT / "docs" / "events.md").read_text()
    found: dict[str, tuple[str, set[str]]] = {}
    section = ""
    for line in text.splitlines():
        heading = re.match(r"^#+ .*`(KAFKA_TOPIC_\w+)`", line)
        if heading:
            section = heading.group(1)
        elif line.startswith("## Messages received"):
            section = "KAFKA_TOPIC_AI_RESULTS"
        elif line.startswith("#"):
            section = ""  # another section: the dead-letter reasons' table is no event's
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not section or len(cells) < 2 or not re.fullmatch(r"`\w+`", cells[0]):
            continue
        fields = set()
        # Sent: | Event | When | Fields |; received: | Event | Fields | Effect |.
        for span in re.findall(r"`([^`]+)`", cells[2] if section != "KAFKA_TOPIC_AI_RESULTS" else cells[1]):
            fields |= {name.strip() for name in span.split(",")}
        found[cells[0].strip("`")] = (section, fields)
    return found


def test_the_events_page_lists_every_registered_event_with_its_topic_and_fields():
    documented = documented_events()
    envelope = set(event_catalog.ENVELOPE)
    for event in event_catalog.EVENTS:
        if event.name == "dead_letter":
            continue  # described in prose, with its reasons table
        assert event.name in documented, f"docs/events.md has no row for {event.name}"
        section, fields = documented.pop(event.name)
        assert section == event.topic.setting, event.name
        assert fields == set(event.schema["properties"]) - envelope, event.name
    assert documented == {}, f"docs/events.md lists events the registry does not: {sorted(documented)}"
