"""More than one of each process on one Redis, as `docker compose up --scale` runs them.

The API keeps no state of its own, so a client may resume on any API process and a task submitted
to one is read through another; a worker per queue keeps short tasks prompt behind long ones; and
several workers on one queue share its tasks, each run exactly once.
"""

import json
import signal
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import StackFactory
from tests.support.processes import ApiServer, Worker
from tests.support.sse import FINAL, SSEClient, finished, of_task
from tests.support.stack import Stack
from tests.support.waiting import wait_until

ROUTES = {"TASK_QUEUES": json.dumps({"long": "long"})}

WorkerFactory = Callable[..., Worker]


def history(stack: Stack, task_id: str) -> list[dict[str, Any]]:
    """The task's whole history from its own stream, which ends after its final event."""
    with stack.events(f"/api/tasks/{task_id}/events") as stream:
        stream.wait_ended(30)
    return [m.json() for m in stream.messages]


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


@pytest.fixture
def second_api(stack: Stack) -> Iterator[ApiServer]:
    """Another API process on the shared stack's Redis, configured like its first."""
    api = ApiServer(
        stack.redis.url, stack.directory, env={"KEEPALIVE_SECONDS": "1"}, name="api-2"
    ).start()
    yield api
    api.stop()


@pytest.fixture
def add_worker(make_stack: StackFactory) -> Iterator[WorkerFactory]:
    """Starts more workers on a private stack's Redis; they stop before the stack does."""
    started: list[Worker] = []

    def add(stack: Stack, name: str, **options: Any) -> Worker:
        worker = Worker(stack.redis.url, stack.directory, name=name, **options)
        started.append(worker)
        return worker.start(stack.redis.client())

    yield add
    for worker in started:  # all at once: each takes a moment to shut down
        if worker.process.running:
            worker.process.signal(signal.SIGTERM)
    for worker in started:
        worker.stop()


def test_client_resumes_on_another_api_with_no_gap_and_no_duplicate(
    stack: Stack, second_api: ApiServer
) -> None:
    first = stack.events()
    with first:
        long = stack.submit("long", seconds=5)
        first.wait_for(lambda ms: any(e["type"] == "progress" for e in of_task(long["id"])(ms)))
    seen = list(first.messages)
    last_id = first.last_event_id
    assert last_id is not None
    wait_until(lambda: stack.task(long["id"])["seq"] >= 5, 30, message="missed progress")
    second = SSEClient(f"{second_api.url}/api/events", {"Last-Event-ID": last_id})
    with second:
        second.wait_for(finished(long["id"]), 60)

    stack.assert_resumed_exactly(seen, second.messages, long["id"])
    events = of_task(long["id"])(seen + second.messages)
    assert events[-1]["type"] == "succeeded"
    assert events[-1]["seq"] == stack.task(long["id"])["seq"]
    # Both processes served part of it.
    assert any(e["type"] == "progress" for e in of_task(long["id"])(seen))
    assert any(e["type"] == "progress" for e in of_task(long["id"])(second.messages))


def test_task_submitted_to_one_api_is_read_through_another(
    stack: Stack, second_api: ApiServer
) -> None:
    with httpx.Client(base_url=second_api.url, timeout=15) as api_2:
        request = {"kind": "add", "params": {"x": 4, "y": 5}}
        headers = {"Idempotency-Key": f"scaling-{uuid.uuid4().hex}"}
        submitted = api_2.post("/api/tasks", json=request, headers=headers)
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["id"]

        task = stack.wait_state(task_id, "succeeded")
        assert task["result"] == 9
        assert [e["seq"] for e in history(stack, task_id)] == [1, 2, 3]
        assert task_id in [t["id"] for t in stack.http.get("/api/tasks").json()["items"]]
        # The Idempotency-Key is remembered in Redis too: repeated to the other API, same task.
        again = stack.http.post("/api/tasks", json=request, headers=headers)
        assert again.status_code == 202, again.text
        assert again.json()["id"] == task_id
        assert again.headers["idempotent-replayed"] == "true"


def test_long_tasks_on_their_own_queue_leave_short_ones_prompt(
    make_stack: StackFactory, add_worker: WorkerFactory
) -> None:
    private = make_stack(api_env=ROUTES, worker_env=ROUTES)
    add_worker(private, "long", queues="long", concurrency=1, env=ROUTES)
    longs = [private.submit("long", seconds=30)["id"] for _ in range(2)]
    try:
        # The long worker's one slot is taken; the other long task waits in its queue.
        wait_until(
            lambda: sorted(private.task(t)["state"] for t in longs) == ["queued", "running"],
            60,
            message="one long task running and one queued",
        )
        add = private.submit("add", x=1, y=2)
        done = private.wait_state(add["id"], "succeeded", timeout=30)
        waiting = {task["state"]: task for task in map(private.task, longs)}

        assert sorted(waiting) == ["queued", "running"]
        assert seconds_between(done["created_at"], done["finished_at"]) < 3
        assert done["worker"].startswith("w1@")
        assert waiting["running"]["worker"].startswith("long@")
    finally:
        for task_id in longs:
            private.http.post(f"/api/tasks/{task_id}/cancel")  # 409 if it already ended
        for task_id in longs:
            private.wait_state(task_id, *FINAL, timeout=30)


def test_three_workers_share_a_queue_and_run_each_task_once(
    make_stack: StackFactory, add_worker: WorkerFactory
) -> None:
    private = make_stack()
    add_worker(private, "w2")
    add_worker(private, "w3")
    ids = [private.submit("long", seconds=2)["id"] for _ in range(12)]
    for task_id in ids:
        task = private.wait_state(task_id, *FINAL, timeout=60)
        assert task["state"] == "succeeded", task
        assert task["attempts"] == 1

    starts: list[dict[str, Any]] = []
    for task_id in ids:
        events = history(private, task_id)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert [e["type"] for e in events].count("started") == 1, events
        progress = [e["progress"]["current"] for e in events if e["type"] == "progress"]
        assert progress == [0, 1, 2], events
        starts += [e for e in events if e["type"] == "started"]
    workers = {e["worker"].partition("@")[0] for e in starts}
    assert len(workers) > 1, workers
    assert workers <= {"w1", "w2", "w3"}
