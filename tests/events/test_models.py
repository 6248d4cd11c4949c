"""The event and task models: an event's JSON, and how each field of a task is stored."""

import json
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
    Task,
    TaskState,
    encode_event,
    utcnow,
)
from taskstream.events.state import stored, task_from_hash


def test_an_encoded_event_reads_back_as_the_model() -> None:
    draft = EventDraft(
        task_id="a" * 32,
        kind="long",
        type=EventType.progress,
        progress=Progress.of(2, 5, "step 2 of 5\nline <b>two</b>"),
    )
    event = Event.model_validate_json(
        encode_event("1764072000000-0", 4, "progress", 1, draft.body())
    )
    assert event.id == "1764072000000-0"
    assert (event.seq, event.type, event.state, event.attempt) == (4, "progress", "running", 1)
    assert event.progress == draft.progress
    assert event.progress is not None
    assert event.progress.percent == 40.0
    assert "\n" not in draft.body()  # one SSE data line


def test_an_event_before_the_first_attempt_has_none() -> None:
    body = EventDraft(task_id="a" * 32, kind="add", type=EventType.queued, params={}).body()
    assert Event.model_validate_json(encode_event("1-0", 1, "queued", "0", body)).attempt is None
    assert json.loads(body).keys() == {"task_id", "kind", "at", "params"}


def test_progress_percent_is_clamped() -> None:
    assert Progress.of(7, 5).percent == 100.0
    assert Progress.of(-1, 5).percent == 0.0
    assert Progress.of(0, 0).percent == 100.0


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
@pytest.mark.parametrize(
    "result",
    [5, 2.5, 1e16, 1e-7, -0.0, 2**70, None, True, ODD, [], {"a": [1, None, ODD], "b": {}}],
)
def test_every_stored_field_reads_back_as_it_was(at: datetime, result: JsonValue) -> None:
    error = ErrorInfo(type="E", message=ODD)
    values = {
        "id": "a" * 32,
        "kind": ODD,
        "params": {"x": ODD, "n": [1, 2.5]},
        "state": TaskState.retrying,
        "progress": Progress.of(1, 3, ODD),
        "attempts": 2,
        "result": result,
        "error": error,
        "created_at": at,
        "retry_at": None,
        "cancel_requested": True,
        "seq": 4,
        "last_event_id": "1-0",
        "worker": ODD,
    }
    task = task_from_hash({name: stored(name, value) for name, value in values.items()})
    assert task == Task.model_validate(values)
