"""A task is the fold of its events by the table in `types.py`, in two forms.

`fold` applies an event to a `Task` (the task answered at submission, and the shared cases).
`hash_writes` turns an event into the writes the log's scripts make to the task's hash, which
holds strings: JSON values as JSON text, and an empty string for null. A write's name starting
with `?` is made only while the field has no value, one starting with `+` adds to it.
"""

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from taskstream.errors import TransitionRefused
from taskstream.events.models import Event, EventDraft, Task
from taskstream.events.types import Op, Rule

_JSON_FIELDS = frozenset({"params", "progress", "result", "error"})
_compact = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps builds one per call

Payload = EventDraft | Event  # what a fold reads of an event: its type and fields


def refuses(rule: Rule, state: str | None) -> bool:
    """Whether an event of `rule` may not follow a task in `state` (None: no task yet)."""
    if not rule.follows:
        return state is not None
    return state not in rule.follows


def fold(task: Task | None, event: Payload, seq: int, event_id: str) -> Task:
    """The task after `event`, which the log numbered `seq` and gave `event_id`."""
    rule = event.type.rule
    state = None if task is None else task.state
    if refuses(rule, state):
        raise TransitionRefused(event.task_id, state, event.type.value)
    values: dict[str, Any] = {} if task is None else dict(task)
    for write in rule.writes:
        if write.op is Op.copy:
            values[write.field] = getattr(event, write.arg)
        elif write.op is Op.clear:
            values[write.field] = None
        elif write.op is Op.add:
            values[write.field] = (values.get(write.field) or 0) + write.arg
        elif write.op is Op.first:
            if values.get(write.field) is None:
                values[write.field] = getattr(event, write.arg)
        else:
            values[write.field] = write.arg
    values |= {"state": rule.state, "seq": seq, "last_event_id": event_id}
    return Task.model_validate(values)


def hash_writes(draft: EventDraft) -> tuple[tuple[str, str], ...]:
    rule = draft.type.rule
    writes = [("state", rule.state.value)]
    for write in rule.writes:
        if write.op is Op.copy:
            writes.append((write.field, stored(write.field, getattr(draft, write.arg))))
        elif write.op is Op.clear:
            writes.append((write.field, ""))
        elif write.op is Op.add:
            writes.append((f"+{write.field}", str(write.arg)))
        elif write.op is Op.first:
            writes.append((f"?{write.field}", stored(write.field, getattr(draft, write.arg))))
        else:
            writes.append((write.field, stored(write.field, write.arg)))
    return tuple(writes)


def stored(field: str, value: Any) -> str:
    """`value` of a task's `field` as the hash holds it."""
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    if field in _JSON_FIELDS:
        return "" if value is None else _compact(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def task_from_hash(raw: Mapping[str, str]) -> Task:
    values: dict[str, Any] = {key: value for key, value in raw.items() if value != ""}
    for name in _JSON_FIELDS:
        if name in values:
            values[name] = json.loads(values[name])
    values["cancel_requested"] = values.get("cancel_requested") == "1"
    return Task.model_validate(values)
