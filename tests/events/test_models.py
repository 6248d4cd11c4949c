"""Events are encoded once and read back whole; each event type sets the task's state."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import JsonValue

from taskstream.events.ids import new_task_id, parse_event_id
from taskstream.events.models import (
    ErrorInfo,
    Event,
    EventDraft,
    EventType,
    Progress,
    TaskState,
    splice,
    started_head,
    succeeded_event,
    utcnow,
)
from taskstream.events.state import state_fields, succeeded_fields, task_from_hash


def test_spliced_event_reads_back_as_the_model() -> None:
    draft = EventDraft(
        task_id="a" * 32,
        kind="long",
        type=EventType.progress,
        attempt=1,
        progress=Progress.of(2, 5, "step 2 of 5\nline <b>two</b>"),
    )
    event = Event.model_validate_json(splice("1764072000000-0", 4, draft.dumps()))
    assert event.id == "1764072000000-0"
    assert event.seq == 4
    assert event.state == TaskState.running
    assert event.progress == draft.progress
    assert event.progress is not None
    assert event.progress.percent == 40.0
    assert "\n" not in draft.dumps()  # one SSE data line


def test_progress_percent_is_clamped() -> None:
    assert Progress.of(7, 5).percent == 100.0
    assert Progress.of(-1, 5).percent == 0.0
    assert Progress.of(0, 0).percent == 100.0


def test_state_fields_fold_into_a_task() -> None:
    task_id = new_task_id()
    at = datetime(2026, 11, 25, 12, tzinfo=UTC)
    raw: dict[str, str] = {"seq": "3", "last_event_id": "1-0"}
    for draft in [
        EventDraft(task_id=task_id, kind="add", type=EventType.queued, params={"x": 1}, at=at),
        EventDraft(task_id=task_id, kind="add", type=EventType.started, attempt=1, at=at),
        EventDraft(
            task_id=task_id,
            kind="add",
            type=EventType.failed,
            error=ErrorInfo(type="ValueError", message="no"),
            at=at,
        ),
    ]:
        for name, value in state_fields(draft).items():
            if name.startswith("?"):
                raw.setdefault(name[1:], value)
            else:
                raw[name] = value
    task = task_from_hash(raw)
    assert task.state == TaskState.failed
    assert task.params == {"x": 1}
    assert task.attempts == 1
    assert task.error == ErrorInfo(type="ValueError", message="no")
    assert task.started_at == task.finished_at == at
    assert task.result is None


def test_event_ids_parse_strictly() -> None:
    assert parse_event_id("1764072000000-12") == (1764072000000, 12)
    for bad in ("", "12", "1-", "-1", "a-1", "1-1-1", f"{2**64}-0", " 1-1"):
        assert parse_event_id(bad) is None, bad
    first, second = new_task_id(1_000), new_task_id(2_000)
    assert first < second
    assert len(first) == 32


TIMES = [
    datetime(2026, 11, 25, 12, tzinfo=UTC),
    datetime(2026, 11, 25, 12, 0, 1, 250, tzinfo=UTC),
    datetime(2026, 11, 25, 12, tzinfo=timezone(timedelta(hours=2))),
]
ODD = 'quote " backslash \\ \u00e9 \u2028 \x01 \n'


@pytest.mark.parametrize("at", [*TIMES, utcnow()])
@pytest.mark.parametrize("worker", ["w1@host/42", ODD])
def test_the_started_head_is_its_drafts_text(at: datetime, worker: str) -> None:
    draft = EventDraft(task_id=ODD, kind="add", type=EventType.started, worker=worker, at=at)
    assert started_head(ODD, "add", worker, at) == draft.dumps()[:-1]


@pytest.mark.parametrize("at", TIMES)
@pytest.mark.parametrize(
    "result",
    [5, 2.5, 1e16, 1e-7, -0.0, 2**70, None, True, ODD, [], {"a": [1, None, ODD], "b": {}}],
)
def test_a_succeeded_event_is_its_drafts_text(at: datetime, result: JsonValue) -> None:
    task_id = new_task_id()
    draft = EventDraft(
        task_id=task_id, kind="add", type=EventType.succeeded, attempt=3, result=result, at=at
    )
    assert succeeded_event(task_id, "add", 3, result, at) == draft.dumps()
    assert succeeded_fields(result, at) == state_fields(draft)
