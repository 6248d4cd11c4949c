"""The stream-following state machine on its own, fed what a server could send (no network).

What a live API does not do on demand (a `reset` or a gap on a task's stream, a burst of 503s,
time running out) is fed here directly; the live tests prove the rest.
"""

import json
from datetime import UTC, datetime

import pytest

from taskstream.client import (
    Event,
    NotFound,
    Reconnect,
    Reset,
    Snapshot,
    TransportError,
    Unavailable,
    WaitTimeout,
)
from taskstream.client.follow import AllEvents, TaskEvents
from taskstream.events.models import Task, TaskOutput, TaskState

TASK = "0123456789abcdef0123456789abcdef"
POLICY = Reconnect(first_delay=1.0, max_delay=8.0, idle_timeout=30.0, give_up_after=20.0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def event(seq: int, type: str = "progress", task_id: str = TASK) -> bytes:
    body = {
        "id": f"{seq}-0",
        "task_id": task_id,
        "kind": "long",
        "type": type,
        "seq": seq,
        "at": "2026-01-01T00:00:00Z",
        "state": {"succeeded": "succeeded"}.get(type, "running"),
    }
    return f"id: {seq}-0\nevent: {type}\ndata: {json.dumps(body)}\n\n".encode()


def task(seq: int, state: TaskState = TaskState.running) -> Task:
    return Task(
        id=TASK,
        kind="long",
        params={},
        state=state,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        seq=seq,
        last_event_id=f"{seq}-0",
    )


def snapshot(seq: int, state: TaskState = TaskState.running) -> bytes:
    output = TaskOutput(task_id=TASK, last_event_id=f"{seq}-0")
    data = Snapshot(task=task(seq, state), output=output).model_dump_json()
    return f"id: {seq}-0\nevent: snapshot\ndata: {data}\n\n".encode()


def reset(position: str) -> bytes:
    data = json.dumps({"reason": "unknown event id '1-0'", "last_event_id": position})
    return f"id: {position}\nevent: reset\ndata: {data}\n\n".encode()


def task_events(last_event_id: str | None = None, snapshot: bool = False) -> TaskEvents:
    follower = TaskEvents(TASK, last_event_id, snapshot, POLICY, 5.0)
    follower.request()
    follower.opened()
    return follower


def seqs(items: list[Event | Snapshot]) -> list[int]:
    return [item.seq if isinstance(item, Event) else -item.task.seq for item in items]


def test_a_tasks_events_come_once_in_seq_order_until_the_final_one() -> None:
    follower = task_events()
    assert seqs(follower.receive(event(1) + event(2) + event(2))) == [1, 2]
    assert seqs(follower.receive(event(1) + event(3))) == [3]
    assert follower.request().headers["Last-Event-ID"] == "3-0"  # a reconnect resumes there
    assert seqs(follower.receive(event(4, "succeeded") + event(5))) == [4]
    assert follower.done


def test_a_gap_or_a_reset_reconnects_for_a_snapshot_and_goes_on_from_it() -> None:
    for trouble in (event(4), reset("9-0")):
        follower = task_events()
        assert seqs(follower.receive(event(1) + event(2) + trouble + event(5))) == [1, 2]
        assert follower.dropping
        assert follower.delay() == 0
        again = follower.request()
        assert again.params == {"snapshot": "1"}
        assert "Last-Event-ID" not in again.headers
        follower.opened()
        assert seqs(follower.receive(snapshot(4) + event(5))) == [-4, 5]
        assert follower.request().headers["Last-Event-ID"] == "5-0"


def test_after_a_reset_a_snapshot_behind_what_was_seen_replaces_it() -> None:
    # A failover lost events 4 and 5: the new primary's log gives seq 4 and 5 again.
    follower = task_events()
    assert seqs(follower.receive(b"".join(event(n) for n in range(1, 6)))) == [1, 2, 3, 4, 5]
    follower.receive(reset("2-0"))
    follower.request()
    follower.opened()
    assert seqs(follower.receive(snapshot(3) + event(4) + event(5))) == [-3, 4, 5]
    # Without a reset, a snapshot behind what was seen says nothing new.
    follower.receive(event(7))  # a gap
    follower.request()
    follower.opened()
    assert seqs(follower.receive(snapshot(5) + event(6))) == [6]


def test_resuming_from_a_callers_id_takes_the_first_seq_after_it() -> None:
    follower = task_events(last_event_id="7-0")
    assert follower.request().headers["Last-Event-ID"] == "7-0"
    assert seqs(follower.receive(event(8) + event(9))) == [8, 9]


def test_a_finished_snapshot_ends_the_watch_with_its_task() -> None:
    follower = task_events(snapshot=True)
    [item] = follower.receive(snapshot(6, TaskState.succeeded))
    assert isinstance(item, Snapshot)
    assert follower.done
    assert follower.final == item.task


def test_a_stream_that_ends_with_nothing_said_asks_whether_the_task_has_ended() -> None:
    follower = task_events(last_event_id="6-0")
    follower.ended()
    check = follower.check()
    assert check is not None
    assert check.request.path == f"/api/tasks/{TASK}"
    follower.checked(task(6, TaskState.running))
    assert not follower.done  # still running: reconnect
    follower.checked(task(6, TaskState.succeeded))
    assert follower.done
    assert follower.final == task(6, TaskState.succeeded)
    busy = task_events()
    busy.receive(event(1))
    busy.ended()
    assert busy.check() is None  # it said something: just reconnect
    silent = task_events()
    silent.ended()
    with pytest.raises(NotFound):
        silent.check_failed(NotFound("gone", status=404))  # the task expired: nothing to follow


def test_backoff_doubles_from_the_servers_hint_with_jitter_up_to_the_cap() -> None:
    clock = Clock()
    follower = TaskEvents(TASK, None, False, POLICY, 5.0, clock=clock)
    follower.request()
    follower.receive(b"retry: 500\n\n")
    ceilings = []
    for _ in range(7):
        follower.lost(ConnectionRefusedError())
        ceilings.append(follower.delay())
    expected = [0.5, 1, 2, 4, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(ceilings, expected, strict=True)), ceilings
    follower.refused(Unavailable("busy", retry_after=5))
    assert follower.delay() >= 5
    follower.opened()  # a connection that opens starts over
    follower.lost(ConnectionRefusedError())
    assert follower.delay() <= 0.5


def test_a_stream_failing_longer_than_give_up_after_raises_its_last_error() -> None:
    clock = Clock()
    follower = AllEvents(None, None, None, None, None, POLICY, 5.0, clock=clock)
    follower.lost(ConnectionRefusedError())
    clock.now += 19
    follower.refused(Unavailable("away", retry_after=5))
    clock.now += 1
    with pytest.raises(TransportError) as raised:
        follower.lost(ConnectionRefusedError())
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)
    with pytest.raises(NotFound):
        follower.refused(NotFound("no", status=404))  # never waited for


def test_everyones_stream_yields_a_reset_and_goes_on_from_its_position() -> None:
    follower = AllEvents(["queued", "succeeded"], "long", "t", [TASK, TASK], "x", POLICY, 5.0)
    first = follower.request()
    assert first.params == {
        "types": "queued,succeeded",
        "kind": "long",
        "tag": "t",
        "task": f"{TASK},{TASK}",
    }
    assert first.headers["Last-Event-ID"] == "x"
    items = follower.receive(reset("3-0") + event(2) + event(4) + event(4) + event(5))
    assert [type(i) for i in items] == [Reset, Event, Event]
    assert [i.id for i in items] == ["3-0", "4-0", "5-0"]
    assert follower.request().headers["Last-Event-ID"] == "5-0"
    assert not follower.done


def test_a_deadline_bounds_each_wait_and_then_raises_wait_timeout() -> None:
    clock = Clock()
    follower = TaskEvents(TASK, None, True, POLICY, 5.0, within=3.0, clock=clock)
    follower.request()
    assert follower.timeouts() == (3.0, 3.0)
    follower.lost(ConnectionRefusedError())
    clock.now += 2.5
    assert follower.delay() <= 0.5
    clock.now += 0.5
    with pytest.raises(WaitTimeout) as raised:
        follower.request()
    assert isinstance(raised.value, TimeoutError)
