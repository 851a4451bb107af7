"""The service's own Prometheus metrics: one place that names them all.

Services count what happens with one-line `.inc()` calls on the objects below;
django-prometheus adds request, database and cache metrics; the outbox gauges
are computed from the database when `/metrics` is scraped (`core.metrics_view`).

Under gunicorn (and in the compose set's worker and consumer) the values live
in prometheus_client's multiprocess files (`PROMETHEUS_MULTIPROC_DIR`), so a
scrape of any web process adds up every process that shares the folder
(`core.metrics_process`).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LOGINS = Counter(
    "user_service_logins",
    "Password logins over the API, by result (succeeded, failed).",
    ["result"],
)
LOCKOUTS_STARTED = Counter(
    "user_service_lockouts_started",
    "Login lockouts started (LOGIN_MAX_ATTEMPTS failures in a row on one account or name).",
)
REFRESH_TOKEN_REUSE = Counter(
    "user_service_refresh_token_reuse",
    "Spent refresh tokens presented again (treated as theft: the session is revoked).",
)
SESSIONS_REVOKED = Counter(
    "user_service_sessions_revoked",
    "Sessions revoked, by reason (logout, revoked, session_limit, refresh_reuse, password_change, ...).",
    ["reason"],
)
EVENTS_PUBLISHED = Counter(
    "user_service_events_published",
    "Outbox events the relay handed to Kafka (or to the events log without Kafka).",
)
EVENTS_FAILED = Counter(
    "user_service_events_failed",
    "Outbox events the relay could not publish (left pending for the next run).",
)
CONSUMER_MESSAGES = Counter(
    "user_service_consumer_messages",
    "Messages read by consume_events, by event name and outcome (handled, duplicate, "
    "or the reason it was dead-lettered: malformed, too_large, too_deep, invalid, unknown, failed).",
    ["event", "outcome"],
)
CONSUMER_DEAD_LETTERS = Counter(
    "user_service_consumer_dead_letters",
    "Messages consume_events could not handle and copied to KAFKA_TOPIC_AI_RESULTS_DLQ, by reason.",
    ["reason"],
)
CACHE_SECONDS = Histogram(
    "user_service_cache_operation_seconds",
    "Time spent in cache calls, by operation.",
    ["operation"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)

#: Why consume_events dead-letters a message (`notifications.consumer`): a closed list, so that
#: the `reason` label stays bounded whatever arrives.
DEAD_LETTER_REASONS = ("malformed", "too_large", "too_deep", "invalid", "unknown", "failed")

# Series that exist from the start read 0 instead of being absent until the first event.
for _result in ("succeeded", "failed"):
    LOGINS.labels(result=_result)
for _reason in DEAD_LETTER_REASONS:
    CONSUMER_DEAD_LETTERS.labels(reason=_reason)


def consumer_message_counted(event: str, outcome: str) -> str:
    """Count one consumed message and hand its outcome back.

    `event` is the caller's to bound: an event name it has a handler for, else "other" (a name
    from outside could be anything, and each would be a series of its own).
    """
    CONSUMER_MESSAGES.labels(event=event, outcome=outcome).inc()
    return outcome


def consumer_dead_lettered(reason: str) -> None:
    CONSUMER_DEAD_LETTERS.labels(reason=reason if reason in DEAD_LETTER_REASONS else "failed").inc()
