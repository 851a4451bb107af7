"""`/metrics` (API.md → Service; issue 15): who may read it, and that each number moves when its thing happens.

The multi-worker sum under real gunicorn is in `config/tests/test_gunicorn.py`.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from notifications import consumer, outbox, services
from notifications.models import OutboxEvent
from testing.kafka import produce
from testing.metrics import Scrape, scrape

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"


# --- who may read it ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_loopback_reads_prometheus_text_with_views_database_and_cache(client):
    client.get("/health/ready")  # one view, some queries, some cache calls
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    page = Scrape(response.content.decode())
    assert page.value(
        "django_http_requests_total_by_view_transport_method_total",
        view="health-ready",
        transport="http",
        method="GET",
    )
    assert page.total("django_http_requests_latency_seconds_by_view_method_count", view="health-ready") >= 1
    assert page.total("django_db_query_duration_seconds_count") > 0
    assert page.total("user_service_cache_operation_seconds_count", operation="set") > 0
    for name in (
        "user_service_logins",
        "user_service_lockouts_started",
        "user_service_refresh_token_reuse",
        "user_service_sessions_revoked",
        "user_service_events_published",
        "user_service_events_failed",
        "user_service_consumer_messages",
        "user_service_outbox_backlog",
        "user_service_outbox_oldest_pending_age_seconds",
    ):
        assert name in page.names, name


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_addresses_are_allowed_by_default(client, address):
    assert client.get("/metrics", REMOTE_ADDR=address).status_code == 200


@pytest.mark.django_db
def test_another_address_is_refused_without_a_token(client):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Metrics are not available to this address.",
        "code": "permission_denied",
    }
    assert b"user_service" not in response.content


@pytest.mark.django_db
def test_configured_networks_replace_the_default(client, settings):
    settings.METRICS_ALLOWED_CIDRS = ["10.20.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.21.3.4").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


@pytest.mark.django_db
def test_the_bearer_token_opens_it_from_anywhere_and_a_wrong_one_is_401(client, settings):
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    far = {"REMOTE_ADDR": "198.51.100.4"}
    assert (
        client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789", **far).status_code == 200
    )
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456780", **far)
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"] == "Bearer"
    assert wrong.json()["code"] == "authentication_failed"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic c2NyYXBl", **far).status_code == 403
    assert client.get("/metrics", **far).status_code == 403


@pytest.mark.django_db
def test_without_a_configured_token_a_bearer_opens_nothing(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer ", REMOTE_ADDR="198.51.100.4")
    assert response.status_code == 403


@pytest.mark.django_db
def test_forwarded_for_counts_only_through_trusted_proxies(client, settings):
    # No trusted proxy: a client cannot claim to be loopback.
    settings.TRUSTED_PROXY_COUNT = 0
    spoofed = client.get("/metrics", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert spoofed.status_code == 403
    # One trusted proxy on loopback: the address it forwards is the client, and it is not allowed.
    settings.TRUSTED_PROXY_COUNT = 1
    proxied = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert proxied.status_code == 403
    inside = client.get("/metrics", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert inside.status_code == 200


# --- accounts ----------------------------------------------------------------------------------


def _login(api: APIClient, username: str, password: str) -> int:
    return api.post(LOGIN, {"username": username, "password": password}, format="json").status_code


@pytest.mark.django_db
def test_logins_succeeded_and_failed_are_counted(client, api_client, user, password):
    before = scrape(client)
    assert _login(api_client, user.username, password) == 200
    assert _login(api_client, user.username, "not the password") == 401
    assert _login(api_client, "nobody-at-all", "whatever it is") == 401
    after = scrape(client)
    name = "user_service_logins_total"
    assert after.value(name, result="succeeded") - before.value(name, result="succeeded") == 1
    assert after.value(name, result="failed") - before.value(name, result="failed") == 2


@pytest.mark.django_db
def test_a_lockout_start_is_counted_once(client, api_client, user, settings):
    settings.LOGIN_MAX_ATTEMPTS = 3
    before = scrape(client).value("user_service_lockouts_started_total")
    statuses = [_login(api_client, user.username, f"wrong {n}") for n in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    assert scrape(client).value("user_service_lockouts_started_total") - before == 1


@pytest.mark.django_db
def test_refresh_reuse_and_revocations_are_counted_by_reason(client, api_client, login, user):
    name = "user_service_sessions_revoked_total"
    before = scrape(client)
    first = login(user)
    assert api_client.post(REFRESH, {"refresh": first["refresh"]}, format="json").status_code == 200
    replay = api_client.post(REFRESH, {"refresh": first["refresh"]}, format="json")
    assert replay.status_code == 401
    assert replay.json()["code"] == "token_reused"

    second = login(user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {second['access']}")
    assert api_client.post(LOGOUT, {}, format="json").status_code == 204

    after = scrape(client)
    assert (
        after.value("user_service_refresh_token_reuse_total")
        - before.value("user_service_refresh_token_reuse_total")
        == 1
    )
    assert after.value(name, reason="refresh_reuse") - before.value(name, reason="refresh_reuse") == 1
    assert after.value(name, reason="logout") - before.value(name, reason="logout") == 1


# --- events ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_outbox_gauges_are_read_from_the_database_when_scraped(client):
    OutboxEvent.objects.filter(published_at__isnull=True).delete()
    empty = scrape(client)
    assert empty.value("user_service_outbox_backlog") == 0
    assert empty.value("user_service_outbox_oldest_pending_age_seconds") == 0

    rows = [services.event_emit(name="thing_happened", payload={"n": n}) for n in range(3)]
    OutboxEvent.objects.filter(id=rows[0].id).update(created_at=timezone.now() - timedelta(seconds=600))
    page = scrape(client)
    assert page.value("user_service_outbox_backlog") == 3
    assert 600 <= page.value("user_service_outbox_oldest_pending_age_seconds") < 660

    OutboxEvent.objects.filter(id=rows[0].id).update(published_at=timezone.now())
    assert scrape(client).value("user_service_outbox_backlog") == 2


@pytest.mark.slow
@pytest.mark.django_db
def test_events_published_and_failed_are_counted(client, settings, no_producer):
    OutboxEvent.objects.filter(published_at__isnull=True).delete()
    before = scrape(client)
    # Nothing listens on port 1: the relay gives up within KAFKA_MAX_BLOCK_MS and keeps the rows.
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]
    settings.KAFKA_MAX_BLOCK_MS = 300
    for n in range(2):
        services.event_emit(name="thing_happened", payload={"n": n})
    assert outbox.outbox_publish() == 0
    failed = scrape(client)
    assert (
        failed.value("user_service_events_failed_total") - before.value("user_service_events_failed_total")
        == 2
    )
    assert failed.value("user_service_outbox_backlog") == 2

    settings.KAFKA_BOOTSTRAP_SERVERS = []  # the embedded default: events go to the log
    assert outbox.outbox_publish() == 2
    after = scrape(client)
    published = after.value("user_service_events_published_total")
    assert published - before.value("user_service_events_published_total") == 2
    assert after.value("user_service_outbox_backlog") == 0


@pytest.mark.slow
@pytest.mark.django_db
def test_consumer_messages_are_counted_by_event_and_outcome(client, settings, kafka_broker, monkeypatch):
    """A real broker: three messages in, `consume_events` reads them, the counters follow."""
    seen: list[dict] = []
    monkeypatch.setitem(consumer.HANDLERS, "metrics_test_event", seen.append)
    topic = f"metrics-{uuid.uuid4().hex[:8]}"
    settings.KAFKA_BOOTSTRAP_SERVERS = [kafka_broker.bootstrap]
    settings.KAFKA_CONSUMER_GROUP = f"metrics-{uuid.uuid4().hex[:8]}"
    produce(
        kafka_broker.bootstrap,
        topic,
        [
            (b"metrics_test_event", json.dumps({"event_id": str(uuid.uuid4())}).encode()),
            (b"someone-elses-event", b"{}"),
            (b"metrics_test_event", b"{not json"),
        ],
    )
    before = scrape(client)

    call_command("consume_events", "--topic", topic, "--max-messages", "3", "--timeout", "30", stdout=None)

    after = scrape(client)
    name = "user_service_consumer_messages_total"

    def moved(**labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert len(seen) == 1
    assert moved(event="metrics_test_event", outcome="handled") == 1
    # A name without a handler, or a message that is not JSON, is not trusted as a label.
    assert moved(event="other", outcome="unknown") == 1
    assert moved(event="other", outcome="malformed") == 1
    assert "someone-elses-event" not in after.text
