"""How each event changes a task's stored state: the fields of the task hash it sets.

The hash holds strings; JSON values are stored as JSON text and an empty string means null. A
field name starting with `?` is set only if the hash has no value for it yet.
"""

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, JsonValue

from taskstream.events.models import EventDraft, EventType, Task, TaskState

_JSON_FIELDS = ("params", "progress", "result", "error")
_compact = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps builds one per call


def _model(value: BaseModel | None) -> str:
    return "" if value is None else value.model_dump_json()


def _time(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def state_fields(draft: EventDraft) -> dict[str, str]:
    fields = {"state": draft.state.value}
    at = _time(draft.at)
    match draft.type:
        case EventType.queued:
            fields |= {
                "id": draft.task_id,
                "kind": draft.kind,
                "params": _compact(draft.params or {}),
                "created_at": at,
                "attempts": "0",
                "cancel_requested": "0",
                "dispatch": "1",
                "owner": draft.owner or "",
            }
        case EventType.started:
            fields |= {
                "?started_at": at,
                "attempts": str(draft.attempt or 1),
                "worker": draft.worker or "",
                "progress": "",
                "error": "",
                "retry_at": "",
            }
        case EventType.progress:
            fields["progress"] = _model(draft.progress)
        case EventType.retrying:
            fields |= {"error": _model(draft.error), "retry_at": _time(draft.retry_at)}
        case EventType.succeeded:
            fields = succeeded_fields(draft.result, draft.at)
        case EventType.failed | EventType.cancelled:
            fields |= {"error": _model(draft.error), "finished_at": at, "retry_at": ""}
    return fields


def succeeded_fields(result: JsonValue, at: datetime) -> dict[str, str]:
    """`state_fields` of a `succeeded` event, for the worker, which writes one without a draft."""
    return {
        "state": TaskState.succeeded.value,
        "result": _compact(result),
        "finished_at": at.isoformat(),
        "retry_at": "",
    }


def task_from_hash(raw: dict[str, str]) -> Task:
    values: dict[str, Any] = {key: value for key, value in raw.items() if value != ""}
    for name in _JSON_FIELDS:
        if name in values:
            values[name] = json.loads(values[name])
    values["cancel_requested"] = values.get("cancel_requested") == "1"
    return Task.model_validate(values)
