"""The scripts that append events and start attempts, on a real Redis: what each one writes in one
step, what it refuses, and that a repeated call (its reply lost) acts once."""

from typing import Any

import pytest
import redis

from taskstream.errors import TransitionRefused
from taskstream.events.contract import ScriptCall
from taskstream.events.entries import LogEntry, parse_entries
from taskstream.events.ids import new_task_id
from taskstream.events.models import ErrorInfo, EventDraft, EventType, TaskState
from taskstream.events.scripts import (
    APPEND_SCRIPT,
    BEGIN_SCRIPT,
    CANCEL_SCRIPT,
    Begun,
    Interrupted,
    NotRunnable,
    Script,
    append_call,
    begin_call,
    parse_append_reply,
    parse_begin_reply,
)
from taskstream.events.store import SyncEventStore
from taskstream.settings import Settings

WORKER = "w1@host/42"


def queue(store: SyncEventStore, owner: str | None = "alice", **params: Any) -> str:
    task_id = new_task_id()
    draft = EventDraft(
        task_id=task_id, kind="add", type=EventType.queued, params=params or {"x": 1}, owner=owner
    )
    store.append(draft)
    return task_id


def begin(store: SyncEventStore, task_id: str, dispatch: int = 1) -> Begun:
    begun = store.begin(started(task_id), dispatch)
    assert isinstance(begun, Begun), begun
    return begun


def started(task_id: str, worker: str = WORKER) -> EventDraft:
    return EventDraft(task_id=task_id, kind="add", type=EventType.started, worker=worker)


def finish(store: SyncEventStore, task_id: str, type: EventType, **fields: Any) -> None:
    draft = EventDraft(task_id=task_id, kind="add", type=type, **fields)
    store.append(draft, {TaskState.running})


def run(client: "redis.Redis", script: Script, call: ScriptCall) -> Any:
    keys, args = call.keys_and_args()
    return client.register_script(script.source)(keys=keys, args=args)


def log(client: "redis.Redis", key: str) -> list[LogEntry]:
    return parse_entries(client.xrange(key))


def test_a_life_is_numbered_stored_and_indexed_in_step(
    store: SyncEventStore, client: "redis.Redis", settings: Settings
) -> None:
    task_id = queue(store, x=2, y=3)
    begun = begin(store, task_id)
    assert (begun.attempt, begun.seq, begun.params, begun.cancel_requested) == (
        1,
        2,
        {"x": 2, "y": 3},
        False,
    )
    done = store.append(EventDraft(task_id=task_id, kind="add", type=EventType.succeeded, result=5))
    assert (done.seq, done.cancel_requested) == (3, False)

    keys = store.keys
    entries = log(client, keys.events)
    assert entries == log(client, keys.task_events(task_id))  # same ids, same fields
    assert [e.type for e in entries] == ["queued", "started", "succeeded"]
    assert [e.seq for e in entries] == [1, 2, 3]
    assert {e.owner for e in entries} == {"alice"}
    events = [e.event() for e in entries]
    assert [e.state for e in events] == [TaskState.queued, TaskState.running, TaskState.succeeded]
    assert events[1].attempt == 1
    assert events[1].worker == WORKER
    assert events[2].result == 5
    assert events[2].attempt == 1

    stored = client.hgetall(keys.task(task_id))
    assert stored["state"] == "succeeded"
    assert stored["seq"] == "3"
    assert stored["last_event_id"] == entries[-1].id
    assert stored["attempts"] == "1"
    assert stored["worker"] == WORKER
    assert stored["owner"] == "alice"
    assert stored["result"] == "5"
    assert events[1].at.isoformat() == stored["started_at"]
    assert events[2].at.isoformat() == stored["finished_at"]
    assert begun.event_id == entries[1].id

    prefix = keys.prefix
    for index in (f"{prefix}tasks", f"{prefix}tasks:kind:add", f"{prefix}tasks:owner:alice"):
        assert client.zscore(index, task_id) == 0
    assert client.zscore(keys.index_state("succeeded"), task_id) == 0
    for state in ("queued", "running"):
        assert client.zscore(keys.index_state(state), task_id) is None
    for key in (keys.task(task_id), keys.task_events(task_id)):
        assert 0 < client.ttl(key) <= settings.task_ttl_seconds


def test_an_owner_given_at_submission_marks_every_event(
    store: SyncEventStore, client: "redis.Redis"
) -> None:
    anonymous = queue(store, owner=None)
    begin(store, anonymous)
    assert {e.owner for e in log(client, store.keys.task_events(anonymous))} == {""}
    assert not client.exists(f"{store.keys.prefix}tasks:owner:")


def test_a_submission_queues_its_message_in_the_same_step(
    store: SyncEventStore, client: "redis.Redis"
) -> None:
    task_id = new_task_id()
    draft = EventDraft(task_id=task_id, kind="add", type=EventType.queued, params={})
    appended = store.append(draft, enqueue=("queue:a", "message"))
    assert (appended.seq, appended.cancel_requested) == (1, False)
    assert client.lrange("queue:a", 0, -1) == ["message"]
    with pytest.raises(TransitionRefused):  # the task exists: neither event nor message
        store.append(draft.model_copy(update={"owner": "bob"}), enqueue=("queue:a", "again"))
    assert client.lrange("queue:a", 0, -1) == ["message"]
    assert client.xlen(store.keys.events) == 1


def test_a_repeated_start_or_append_acts_once(
    store: SyncEventStore, client: "redis.Redis", settings: Settings
) -> None:
    """The same call again (same token, as after a lost reply) returns the first result."""
    task_id = queue(store)
    start = begin_call(store.keys, settings, started(task_id), 1)
    first = parse_begin_reply(run(client, BEGIN_SCRIPT, start))
    again = parse_begin_reply(run(client, BEGIN_SCRIPT, start))
    assert first == again
    assert isinstance(first, Begun)

    draft = EventDraft(task_id=task_id, kind="add", type=EventType.succeeded, result=2)
    call = append_call(store.keys, settings, draft, {TaskState.running})
    done = parse_append_reply(task_id, draft.type, run(client, APPEND_SCRIPT, call))
    assert parse_append_reply(task_id, draft.type, run(client, APPEND_SCRIPT, call)) == done
    assert done.seq == 3
    assert [e.type for e in log(client, store.keys.task_events(task_id))] == [
        "queued",
        "started",
        "succeeded",
    ]
    assert client.xlen(store.keys.events) == 3


def test_nothing_follows_a_final_event(store: SyncEventStore, client: "redis.Redis") -> None:
    task_id = queue(store)
    begin(store, task_id)
    finish(store, task_id, EventType.succeeded, result=2)
    with pytest.raises(TransitionRefused):
        finish(store, task_id, EventType.succeeded, result=2)
    with pytest.raises(TransitionRefused):
        finish(store, task_id, EventType.failed, error=ErrorInfo(type="E", message="m"))
    with pytest.raises(TransitionRefused):
        store.append(EventDraft(task_id=task_id, kind="add", type=EventType.progress))
    assert store.begin(started(task_id), 1) == NotRunnable("task is succeeded")
    assert client.xlen(store.keys.task_events(task_id)) == 3
    assert client.hget(store.keys.task(task_id), "seq") == "3"
    assert client.zscore(store.keys.index_state("succeeded"), task_id) == 0
    queue_again = EventDraft(task_id=task_id, kind="add", type=EventType.queued, params={})
    with pytest.raises(TransitionRefused):
        store.append(queue_again)


def test_a_second_attempt_keeps_the_first_start_time(
    store: SyncEventStore, client: "redis.Redis"
) -> None:
    task_id = queue(store)
    begin(store, task_id)
    started_at = client.hget(store.keys.task(task_id), "started_at")
    error = ErrorInfo(type="RetryableError", message="again")
    finish(store, task_id, EventType.retrying, error=error)
    assert client.hget(store.keys.task(task_id), "error") == error.model_dump_json()
    second = begin(store, task_id)
    assert (second.attempt, second.seq) == (2, 4)
    stored = client.hgetall(store.keys.task(task_id))
    assert stored["started_at"] == started_at
    assert (stored["attempts"], stored["state"], stored["error"]) == ("2", "running", "")
    assert client.zscore(store.keys.index_state("retrying"), task_id) is None
    assert client.zscore(store.keys.index_state("running"), task_id) == 0


def test_a_start_finds_a_lost_attempt_or_a_newer_dispatch(
    store: SyncEventStore, client: "redis.Redis"
) -> None:
    task_id = queue(store)
    assert store.begin(started(task_id), 2) == NotRunnable("superseded by dispatch 1")
    begin(store, task_id)
    assert store.begin(started(task_id, "other/1"), 1) == Interrupted(WORKER, 1, 0)
    assert store.begin(started(new_task_id()), 1) == NotRunnable("task is unknown")

    lost = EventDraft(
        task_id=task_id,
        kind="add",
        type=EventType.retrying,
        error=ErrorInfo(type="WorkerLost", message="lost"),
    )
    with pytest.raises(TransitionRefused):  # not the attempt that is marked running
        store.append(lost, {TaskState.running}, {"worker": "other/1", "attempts": "1"})
    changes = {"+lost": "1", "+dispatch": "1"}
    store.append(lost, {TaskState.running}, {"worker": WORKER, "attempts": "1"}, changes)
    stored = client.hgetall(store.keys.task(task_id))
    assert (stored["lost"], stored["dispatch"], stored["state"]) == ("1", "2", "retrying")
    assert store.begin(started(task_id), 1) == NotRunnable("superseded by dispatch 2")
    assert begin(store, task_id, dispatch=2).attempt == 2


def test_a_cancel_request_comes_back_with_the_next_append(
    store: SyncEventStore, client: "redis.Redis"
) -> None:
    task_id = queue(store)
    begin(store, task_id)
    assert client.eval(CANCEL_SCRIPT.source, 1, store.keys.task(task_id)) == "running"
    progress = EventDraft(task_id=task_id, kind="add", type=EventType.progress)
    assert store.append(progress).cancel_requested
    assert store.cancel_requested(task_id)


def test_a_script_redis_forgot_is_loaded_again(
    store: SyncEventStore, client: "redis.Redis"
) -> None:
    task_id = queue(store)
    client.script_flush()  # as after a restart of Redis without its script cache
    assert begin(store, task_id).seq == 2
    assert client.script_exists(BEGIN_SCRIPT.sha) == [True]
