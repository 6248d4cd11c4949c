"""The table of event semantics as read: every event type has a row, and a malformed row is
refused when the table loads rather than misread later."""

import json
from pathlib import Path

import pytest

from taskstream.events.types import FINAL_STATES, RULES, TABLE_PATH, EventType, Op, TaskState, load


def test_every_event_type_has_a_row_and_final_ones_end_in_final_states() -> None:
    assert set(RULES) == set(EventType)
    assert {TaskState.succeeded, TaskState.failed, TaskState.cancelled} == FINAL_STATES
    assert {rule.type for rule in RULES.values() if rule.final} == {
        EventType.succeeded,
        EventType.failed,
        EventType.cancelled,
    }
    assert RULES[EventType.queued].follows == frozenset()  # only a task's first event
    writes = {write.field: write.op for write in RULES[EventType.started].writes}
    assert writes["attempts"] is Op.add
    assert writes["started_at"] is Op.first
    assert writes["error"] is Op.clear


def table_with(tmp_path: Path, type: str, **row: object) -> Path:
    table = json.loads(TABLE_PATH.read_text())
    table["types"][type] |= row
    path = tmp_path / "types.json"
    path.write_text(json.dumps(table))
    return path


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ({"state": "done"}, "'done' is not a valid TaskState"),
        ({"follows": ["nowhere"]}, "'nowhere' is not a valid TaskState"),
        ({"sets": {"error": 5}}, "error: 5 is not a field write"),
        ({"sets": {"attempts": {"times": 2}}}, "'times' is not a valid Op"),
    ],
)
def test_a_malformed_row_is_refused_as_the_table_loads(
    tmp_path: Path, row: dict[str, object], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        load(table_with(tmp_path, "started", **row))


def test_a_missing_row_is_refused(tmp_path: Path) -> None:
    table = json.loads(TABLE_PATH.read_text())
    del table["types"]["progress"]
    path = tmp_path / "types.json"
    path.write_text(json.dumps(table))
    with pytest.raises(ValueError, match="no row for \\['progress'\\]"):
        load(path)
