"""The Celery app. Without `CELERY_BROKER_URL` tasks run in-process (eager).

The request id of the request that queued a task travels in the message's
headers and is the task's request id while it runs, so its log lines can be
found with the request's. Celery's signals are the documented place for this
(no business effect hides here).
"""

import os
from typing import Any

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun

from core.logging_context import current_request_id, reset_request_id, sane_request_id, set_request_id

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("user_service")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

REQUEST_ID_HEADER = "request_id"


@before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    request_id = current_request_id()
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


@task_prerun.connect
def _adopt_request_id(task: Any = None, **kwargs: Any) -> None:
    # Custom message headers become attributes of the task's request context.
    # An eager task (no broker) runs inside the request and keeps its id as it is.
    request_id = sane_request_id(getattr(task.request, REQUEST_ID_HEADER, None)) if task else None
    if request_id:
        task.request._request_id_token = set_request_id(request_id)


@task_postrun.connect
def _forget_request_id(task: Any = None, **kwargs: Any) -> None:
    token = getattr(task.request, "_request_id_token", None) if task else None
    if token is not None:
        reset_request_id(token)
        task.request._request_id_token = None


@app.on_after_configure.connect
def _in_memory_transport_without_a_broker(sender: Celery, source: Any, **kwargs: Any) -> None:
    """Eager tasks still borrow a producer from the broker's pool (Celery 5.3+).

    With no broker configured that pool pointed at amqp://localhost and kombu
    warned "No hostname was supplied" at the first task: the in-memory
    transport is what "no broker" means, and nothing is ever sent through it
    (its host named, or kombu warns the same about it).
    """
    if not source.broker_url:
        source.broker_url = "memory://localhost/"
