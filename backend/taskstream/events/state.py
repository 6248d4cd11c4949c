"""A task is the fold of its events by the table in `types.py`, in two forms.

`fold` applies an event to a `Task` (the task answered at submission, and the shared cases).
`hash_writes` turns an event into the writes the log's scripts make to the task's hash, which
holds strings: JSON values as JSON text, and an empty string for null. A write's name starting
with `?` is made only while the field has no value, one starting with `+` adds to it.

A task's output is a map of streams: the hash holds each stream's summary as `output.<stream>`,
and its content in a key of its own (`Keys.task_output`: text, or one JSON item per line). A
write named `>output:<stream>` appends to that key; one named `*output` clears the map (every
`output.*` field and its key). A task's log lines are counted in the hash (`logs`) and kept, the
last LOG_MAX_LINES, in a list of their own (`Keys.task_logs`): a write named `<logs` pushes one.
"""

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from taskstream.errors import TransitionRefused
from taskstream.events.models import Event, EventDraft, OutputChunk, OutputStream, Task
from taskstream.events.types import Op, Rule

_JSON_FIELDS = frozenset({"params", "progress", "result", "error", "metadata", "tags"})
_MAPS = frozenset({"output"})  # fields that are a map of named parts: cleared to {}
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
            values[write.field] = {} if write.field in _MAPS else None
        elif write.op is Op.add:
            values[write.field] = (values.get(write.field) or 0) + write.arg
        elif write.op is Op.push:
            values[write.field] = (values.get(write.field) or 0) + 1
        elif write.op is Op.extend:
            chunk: OutputChunk = getattr(event, write.arg)
            streams = dict(values.get(write.field) or {})
            streams[chunk.stream] = extended(streams.get(chunk.stream), chunk)
            values[write.field] = streams
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
            writes.append((f"*{write.field}" if write.field in _MAPS else write.field, ""))
        elif write.op is Op.extend:
            chunk = getattr(draft, write.arg)
            summary = extended(None, chunk)
            name = f"{write.field}.{chunk.stream}"
            writes.append((name, summary.model_dump_json()))
            writes.append((f">{write.field}:{chunk.stream}", content(chunk)))
        elif write.op is Op.push:
            line = {"at": draft.at.isoformat(), **getattr(draft, write.arg).model_dump()}
            writes.append((f"+{write.field}", "1"))
            writes.append((f"<{write.field}", _compact(line)))
        elif write.op is Op.add:
            writes.append((f"+{write.field}", str(write.arg)))
        elif write.op is Op.first:
            writes.append((f"?{write.field}", stored(write.field, getattr(draft, write.arg))))
        else:
            writes.append((write.field, stored(write.field, write.arg)))
    return tuple(writes)


def extended(stream: OutputStream | None, chunk: OutputChunk) -> OutputStream:
    """A stream's summary after `chunk` (the chunk's offset tells the length before it)."""
    truncated = bool(chunk.truncated) or (stream is not None and stream.truncated)
    return OutputStream(
        type="text" if chunk.text is not None else "json",
        length=chunk.offset + chunk.size,
        truncated=truncated,
    )


def content(chunk: OutputChunk) -> str:
    """What `chunk` appends to its stream's content: its text, or one JSON item per line."""
    if chunk.text is not None:
        return chunk.text
    return "".join(_compact(item) + "\n" for item in chunk.items or ())


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
    values: dict[str, Any] = {}
    output: dict[str, Any] = {}
    for key, value in raw.items():
        if value == "":
            continue
        if key.startswith("output."):
            output[key[7:]] = json.loads(value)
        else:
            values[key] = value
    for name in _JSON_FIELDS:
        if name in values:
            values[name] = json.loads(values[name])
    values["output"] = output
    values["cancel_requested"] = values.get("cancel_requested") == "1"
    return Task.model_validate(values)
