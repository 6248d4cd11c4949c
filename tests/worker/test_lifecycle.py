"""Each kind's whole life, as its own event stream tells it, on a real worker."""

import itertools
from datetime import datetime
from typing import Any

from tests.support.sse import FINAL
from tests.support.stack import Stack


def history(stack: Stack, task_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    """The task's events from its own stream, which the server ends after the final one."""
    with stack.events(f"/api/tasks/{task_id}/events") as stream:
        stream.wait_ended(timeout)
        return [message.json() for message in stream.messages]


def assert_sequenced(events: list[dict[str, Any]]) -> None:
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] in FINAL
    assert all(event["type"] not in FINAL for event in events[:-1])


def test_add_runs_queued_started_succeeded(stack: Stack) -> None:
    task = stack.submit("add", x=2, y=3)
    events = history(stack, task["id"])
    assert [event["type"] for event in events] == ["queued", "started", "succeeded"]
    assert_sequenced(events)
    assert events[0]["params"] == {"x": 2, "y": 3}
    assert events[-1]["result"] == 5
    final = stack.task(task["id"])
    assert final["state"] == "succeeded"
    assert final["result"] == 5
    assert final["attempts"] == 1
    assert final["seq"] == 3
    assert final["last_event_id"] == events[-1]["id"]
    assert final["created_at"] <= final["started_at"] <= final["finished_at"]


def test_long_reports_progress_every_second_moving_forward(stack: Stack) -> None:
    task = stack.submit("long", seconds=3)
    events = history(stack, task["id"])
    assert_sequenced(events)
    assert [e["type"] for e in events[:2]] == ["queued", "started"]
    assert events[-1]["type"] == "succeeded"
    progress = [e for e in events if e["type"] == "progress"]
    assert len(progress) == 4  # 0 of 3, then one a second
    currents = [e["progress"]["current"] for e in progress]
    percents = [e["progress"]["percent"] for e in progress]
    assert currents == sorted(currents)
    assert len(set(currents)) == len(currents)
    assert percents == sorted(percents)
    assert percents[-1] == 100.0
    assert progress[-1]["progress"]["message"] == "step 3 of 3"
    times = [datetime.fromisoformat(e["at"]) for e in progress]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert max(gaps) < 1.5, gaps


def test_unreliable_retries_with_backoff_then_fails(stack: Stack) -> None:
    task = stack.submit("unreliable", failure_rate=1.0, max_retries=2)
    events = history(stack, task["id"])
    assert_sequenced(events)
    assert [e["type"] for e in events] == [
        "queued",
        "started",
        "retrying",
        "started",
        "retrying",
        "started",
        "failed",
    ]
    retries = [e for e in events if e["type"] == "retrying"]
    assert [e["attempt"] for e in retries] == [1, 2]
    waits = [
        (datetime.fromisoformat(e["retry_at"]) - datetime.fromisoformat(e["at"])).total_seconds()
        for e in retries
    ]
    # base 1 s, doubling, with jitter between half and all of it
    assert 0.5 <= waits[0] <= 1.0, waits
    assert 1.0 <= waits[1] <= 2.0, waits
    for retry, next_start in zip(retries, [events[3], events[5]], strict=True):
        assert next_start["at"] >= retry["retry_at"]
    assert events[-1]["error"]["type"] == "RetryableError"
    final = stack.task(task["id"])
    assert final["state"] == "failed"
    assert final["attempts"] == 3
    assert final["retry_at"] is None


def test_unreliable_that_never_fails_succeeds_first_time(stack: Stack) -> None:
    task = stack.submit("unreliable", failure_rate=0.0)
    events = history(stack, task["id"])
    assert [e["type"] for e in events] == ["queued", "started", "succeeded"]
    assert events[-1]["result"] == {"succeeded_on_attempt": 1}
