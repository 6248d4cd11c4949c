"""The Celery application's configuration, shared by the API (which only sends) and the worker.

Messages carry a task id and a dispatch number, in JSON: the task's kind is the Celery task's
name and its params are read from the task state, so nothing but declared kinds can ever run.

The API does not publish through kombu. It builds the message with Celery's own `as_task_v2`,
wraps it as kombu's Redis transport does (`message`), and the same Lua script that records the
task as queued pushes it onto the queue's list. So a task is never recorded without its message
nor queued without its record, and a submission costs one round trip to Redis, never blocking the
event loop. `tests/test_broker.py` holds this to what kombu itself publishes.
"""

import base64
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

from celery import Celery

from taskstream.kinds import KindRegistry, TaskKind
from taskstream.settings import Settings

TASK_NAME_PREFIX = "taskstream."


def celery_task_name(kind: str) -> str:
    return f"{TASK_NAME_PREFIX}{kind}"


def visibility_timeout(kinds: KindRegistry) -> int:
    """Longer than any task can hold a message: its time limit plus its longest retry wait.

    A message not acknowledged within this is handed to another worker, so it must exceed the
    longest task (acks are late) and the longest retry countdown (held unacknowledged), twice
    over for tasks that wait in a worker's prefetch behind another.
    """
    longest = max((kind.max_time_limit for kind in kinds), default=60.0)
    return int(2 * (longest + 30) + 60)


def make_celery(settings: Settings, kinds: KindRegistry) -> Celery:
    app = Celery("taskstream", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_connection_timeout=2,
        broker_transport_options={"visibility_timeout": visibility_timeout(kinds)},
        task_default_queue=settings.default_queue,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        worker_hijack_root_logger=False,
        # Task events cost every task a few more broker messages, so they are off unless a
        # monitor is watching: compose's workers turn them on with -E, for Flower. There is no
        # task-sent event: the API and the worker's recovery push their own messages
        # (`message`), so a task's first event is the worker's task-received, which carries its
        # name and arguments. task_send_sent_event would add one only to retries, which the
        # worker republishes through Celery and already reports as task-retried.
        worker_send_task_events=False,
        task_send_sent_event=False,
        enable_utc=True,
    )
    return app


def message(
    app: Celery,
    settings: Settings,
    kind: TaskKind[Any],
    task_id: str,
    soft_limit: float,
    dispatch: int = 1,
    headers: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """The queue's Redis list and the JSON message that runs `task_id`, as kombu would push it.

    `headers`: more of them, as `send_task(headers=...)` adds them (a trace's `traceparent`).
    """
    queue = settings.queue_for(kind.name)
    task = app.amqp.as_task_v2(
        task_id,
        celery_task_name(kind.name),
        args=(task_id, dispatch),
        argsrepr=repr([task_id, dispatch]),  # as `send_task` writes it, from a list
        ignore_result=None,  # type: ignore[arg-type]  # the task decides, as with `send_task`
        time_limit=math.ceil(kind.max_time_limit + 15),
        soft_time_limit=math.ceil(soft_limit),
        origin="taskstream",
    )
    if headers:
        task.headers.update(headers)
    body = json.dumps(task.body).encode()
    envelope = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": task.headers,
        "properties": {
            **task.properties,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return queue, json.dumps(envelope)


def send(
    app: Celery,
    settings: Settings,
    kind: TaskKind[Any],
    task_id: str,
    soft_limit: float,
    dispatch: int = 1,
) -> None:
    """Publishes the message that runs `task_id` (blocking: call it from a thread).

    `dispatch` numbers the messages of one task: a worker runs only the latest (see
    `worker/recovery.py`).
    """
    app.send_task(
        celery_task_name(kind.name),
        args=[task_id, dispatch],
        task_id=task_id,
        queue=settings.queue_for(kind.name),
        soft_time_limit=math.ceil(soft_limit),
        time_limit=math.ceil(kind.max_time_limit + 15),
    )
