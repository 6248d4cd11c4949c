"""Attempts whose worker is killed are recorded as lost and run again, never left running."""

import os
import signal
from pathlib import Path
from typing import Any

from tests.conftest import StackFactory
from tests.support.processes import Worker
from tests.support.stack import Stack
from tests.support.waiting import wait_until


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def history(stack: Stack, task_id: str, timeout: float = 90) -> list[dict[str, Any]]:
    with stack.events(f"/api/tasks/{task_id}/events") as stream:
        stream.wait_ended(timeout)
        return [message.json() for message in stream.messages]


def running_attempt(stack: Stack, task_id: str) -> dict[str, Any]:
    with stack.events(f"/api/tasks/{task_id}/events") as stream:
        stream.wait_for(lambda ms: any(m.event == "progress" for m in ms), 60)
        return next(m.json() for m in stream.messages if m.event == "started")


def test_a_killed_pool_process_is_recorded_and_its_task_runs_again(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    task = stack.submit("long", seconds=3)
    started = running_attempt(stack, task["id"])
    main_pid = int(started["worker"].rsplit("/", 1)[1])
    for child in children(main_pid):  # every pool process: one of them runs the task
        os.kill(child, signal.SIGKILL)
    events = history(stack, task["id"])
    types = [e["type"] for e in events]
    assert types[-1] == "succeeded", types
    lost = [e for e in events if e["type"] == "retrying"]
    assert len(lost) == 1
    assert lost[0]["error"]["type"] == "WorkerLost"
    assert started["worker"] in lost[0]["error"]["message"]
    assert [e["attempt"] for e in events if e["type"] == "started"] == [1, 2]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_a_killed_worker_is_noticed_by_another_and_its_task_finishes(
    make_stack: StackFactory,
) -> None:
    fast = {"WORKER_STALE_SECONDS": "3"}
    stack = make_stack(worker_env=fast)
    task = stack.submit("long", seconds=3)
    started = running_attempt(stack, task["id"])
    stack.worker.process.kill()  # the whole worker, pool and all, with SIGKILL
    assert stack.task(task["id"])["state"] == "running"
    replacement = Worker(stack.redis.url, stack.directory, name="w2", env=fast)
    replacement.start(stack.redis.client())
    try:
        events = history(stack, task["id"])
    finally:
        replacement.stop()
    types = [e["type"] for e in events]
    assert types[-1] == "succeeded", types
    lost = next(e for e in events if e["type"] == "retrying")
    assert lost["error"]["type"] == "WorkerLost"
    assert started["worker"] in lost["error"]["message"]
    second = [e for e in events if e["type"] == "started"][-1]
    assert second["attempt"] == 2
    assert second["worker"].startswith("w2@")
    # the lost worker's own message may come back later: it must not run the task again
    redis = stack.redis.client()
    assert redis.hget(f"ts:task:{task['id']}", "dispatch") == "2"


def test_a_task_whose_workers_keep_dying_fails_with_the_reason(make_stack: StackFactory) -> None:
    stack = make_stack(worker_env={"WORKER_LOST_RETRIES": "0"})
    task = stack.submit("long", seconds=5)
    started = running_attempt(stack, task["id"])
    for child in children(int(started["worker"].rsplit("/", 1)[1])):
        os.kill(child, signal.SIGKILL)
    final = stack.wait_state(task["id"], "failed", timeout=120)
    assert final["error"]["type"] == "WorkerLost"
    assert "giving up" in final["error"]["message"]
    wait_until(lambda: not stack.redis.client().zcard("ts:tasks:state:running"), 10)
