"""The Celery app of the per-client baselines and of the bare-Celery measurements.

celery -A bench.baselines.celery_app worker -Q bench --concurrency 1

Configured as taskstream's broker is (JSON only, late acknowledgement, prefetch of one, results
ignored), so the only difference in the worker is what a task does around its function:

- `bench.add`: the function and nothing else (the bare Celery baseline);
- `bench.add_pubsub`: the original demo's task, which publishes a `started` message and then a
  `succeeded` message carrying the result on one Redis pub/sub channel (`bench:events`);
- `bench.tokens_pubsub`: the usual design of a task that streams tokens: from `start_at` on, it
  PUBLISHes each of `chunks` chunks (`"<seq>:<time.time()>;"`, as taskstream's `tokens` kind
  writes them) at `rate` per second on the task's own channel (`bench:tokens:<task id>`), one
  message per token, then `[DONE]`.
"""

import json
import os
import time
from datetime import UTC, datetime
from typing import Any

import redis
from celery import Celery, Task
from celery.signals import worker_ready

QUEUE = "bench"
CHANNEL = "bench:events"
TOKENS_CHANNEL = "bench:tokens:"
TOKENS_DONE = b"[DONE]"
READY_KEY = "bench:worker-ready"


def make_app(redis_url: str) -> Celery:
    app = Celery("bench", broker=redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app


REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
app = make_app(REDIS_URL)
_publisher: dict[int, "redis.Redis"] = {}


def publisher() -> "redis.Redis":
    """One connection per pool process (a forked child must not share its parent's socket)."""
    pid = os.getpid()
    if pid not in _publisher:
        _publisher.clear()
        _publisher[pid] = redis.Redis.from_url(REDIS_URL)
    return _publisher[pid]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def publish(task_id: str, type_: str, **fields: Any) -> None:
    message = {"id": f"{time.time_ns() // 1_000_000}-0", "task_id": task_id, "type": type_}
    message.update(fields, at=_now())
    publisher().publish(CHANNEL, json.dumps(message, separators=(",", ":")))


@app.task(name="bench.add")
def add(x: float, y: float) -> float:
    return x + y


@app.task(name="bench.add_pubsub", bind=True)
def add_pubsub(self: Task[Any, Any], x: float, y: float) -> float:
    task_id = str(self.request.id)
    publish(task_id, "started", kind="add")
    result = x + y
    publish(task_id, "succeeded", kind="add", result=result)
    return result


@app.task(name="bench.tokens_pubsub", bind=True)
def tokens_pubsub(self: Task[Any, Any], chunks: int, rate: float, start_at: float) -> int:
    channel = TOKENS_CHANNEL + str(self.request.id)
    publish_ = publisher().publish
    wait = start_at - time.time()
    if wait > 0:
        time.sleep(wait)
    interval = 1.0 / rate
    clock, now, sleep = time.perf_counter, time.time, time.sleep
    begin = clock()
    for seq in range(chunks):
        delay = begin + seq * interval - clock()
        if delay > 0:
            sleep(delay)
        publish_(channel, f"{seq}:{now()!r};")
    publish_(channel, TOKENS_DONE)
    return chunks


@worker_ready.connect
def _announce(**_: Any) -> None:
    redis.Redis.from_url(REDIS_URL).set(READY_KEY, "1")
