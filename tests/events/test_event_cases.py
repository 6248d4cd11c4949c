"""The shared cases of `tests/cases/events.json`, which the page's fold runs too: each event
sequence must give the same task through the Python fold and through the log's scripts on a
real Redis, and the log those scripts write must fold into the task they stored."""

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from taskstream.errors import TransitionRefused
from taskstream.events.entries import parse_entries
from taskstream.events.models import EventDraft, EventType, Task, TaskState
from taskstream.events.scripts import Begun
from taskstream.events.state import fold
from taskstream.events.store import SyncEventStore
from taskstream.events.types import RULES

CASES: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "cases" / "events.json").read_text()
)


def drafts(case: dict[str, Any]) -> list[tuple[EventDraft, bool]]:
    """The case's events as their writers give them, each with whether the log refuses it."""
    return [
        (
            EventDraft.model_validate(
                {"task_id": CASES["task_id"], "kind": CASES["kind"]}
                | {name: value for name, value in event.items() if name != "refused"}
            ),
            bool(event.get("refused")),
        )
        for event in case["events"]
    ]


def assert_task(task: Task | None, expected: dict[str, Any]) -> None:
    assert task is not None
    dumped = task.model_dump(mode="json")
    assert {name: dumped[name] for name in expected} == expected


def by_name(case: dict[str, Any]) -> str:
    return str(case["name"])


def test_every_event_type_has_a_case() -> None:
    seen = {event["type"] for case in CASES["cases"] for event in case["events"]}
    assert seen == set(RULES)
    refused = {e["type"] for case in CASES["cases"] for e in case["events"] if e.get("refused")}
    assert refused == set(RULES)  # and each is refused somewhere


@pytest.mark.parametrize("case", CASES["cases"], ids=by_name)
def test_the_python_fold(case: dict[str, Any]) -> None:
    task: Task | None = None
    for draft, refused in drafts(case):
        seq = 1 if task is None else task.seq + 1
        if refused:
            with pytest.raises(TransitionRefused):
                fold(task, draft, seq, f"1-{seq}")
        else:
            task = fold(task, draft, seq, f"1-{seq}")
    assert_task(task, case["task"])
    assert task is not None
    assert task.last_event_id == f"1-{task.seq}"


def record(store: SyncEventStore, draft: EventDraft) -> bool:
    """Writes `draft` as its writer would; whether the log took it."""
    if draft.type is EventType.started:
        return isinstance(store.begin(draft, dispatch=1), Begun)
    try:
        store.append(draft)
    except TransitionRefused:
        return False
    return True


@pytest.mark.parametrize("case", CASES["cases"], ids=by_name)
def test_the_scripts(case: dict[str, Any], store: SyncEventStore, client: "redis.Redis") -> None:
    task_id = CASES["task_id"]
    for draft, refused in drafts(case):
        assert record(store, draft) is not refused, draft
    stored = store.get_task(task_id)
    assert_task(stored, case["task"])

    entries = parse_entries(client.xrange(store.keys.task_events(task_id)))
    global_logs = [client.xrange(store.keys.events), client.xrange(store.keys.output_events)]
    merged = sorted((e for log in global_logs for e in parse_entries(log)), key=lambda e: e.key)
    assert entries == merged  # the two global logs, merged by id, are the task's own log
    assert stored is not None
    assert stored.last_event_id == entries[-1].id
    folded: Task | None = None
    for entry in entries:
        event = entry.event()
        folded = fold(folded, event, event.seq, event.id)
        assert event.state == folded.state
        assert (event.attempt or 0) == folded.attempts  # the log numbers attempts as the fold
    assert folded == stored.model_copy(update={"owner": None})


def test_a_narrower_set_of_states_than_the_table_allows_refuses_the_rest(
    store: SyncEventStore,
) -> None:
    task_id = CASES["task_id"]
    store.append(EventDraft(task_id=task_id, kind="add", type=EventType.queued, params={}))
    cancelled = EventDraft(task_id=task_id, kind="add", type=EventType.cancelled)
    with pytest.raises(TransitionRefused):
        store.append(cancelled, {TaskState.running})
    assert store.append(cancelled, {TaskState.queued}).seq == 2
