"""Beat's schedule names only tasks that exist, in both run modes.

The purges failed at their first run on the embedded default
(`NotRegistered: accounts.tasks.purge_deleted_accounts`): a web process
imports a task module only when something queues one of its tasks. A fresh
process per mode, since this test process has imported every module already.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings as django_settings

from config.startup import scheduled_tasks
from testing.processes import fresh_python, service_env

PROBE = """
import json, django
django.setup()
from django.conf import settings
from config.startup import scheduled_tasks
from config.celery_app import app
tasks = scheduled_tasks()
print(json.dumps({
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "scheduled": sorted(entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()),
    "resolved": sorted(task.name for task in tasks.values()),
}))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "broker"), [("embedded default", ""), ("with a broker", "redis://127.0.0.1:9/0")]
)
def test_every_scheduled_task_is_registered_in_a_fresh_process(tmp_path, mode, broker):
    env = service_env(tmp_path, DJANGO_SETTINGS_MODULE="config.settings")
    if broker:
        env["CELERY_BROKER_URL"] = broker  # never connected to: only what gets registered matters
    found = json.loads(fresh_python(PROBE, env).strip().splitlines()[-1])
    assert found["eager"] is (not broker)
    assert found["resolved"] == found["scheduled"]
    assert "accounts.tasks.purge_deleted_accounts" in found["resolved"]
    assert "accounts.tasks.purge_old_records" in found["resolved"]


def test_a_schedule_naming_a_missing_task_is_refused(settings):
    settings.CELERY_BEAT_SCHEDULE = {
        **django_settings.CELERY_BEAT_SCHEDULE,
        "typo": {"task": "accounts.tasks.purge_deleted_acounts", "schedule": 60.0},
    }
    with pytest.raises(KeyError, match="purge_deleted_acounts"):
        scheduled_tasks()


@pytest.mark.django_db
def test_each_scheduled_task_runs_in_process(user):
    for name, task in scheduled_tasks().items():
        result = task.apply()
        assert result.successful(), (name, result.traceback)
