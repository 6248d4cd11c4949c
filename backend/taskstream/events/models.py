"""The event and task models, shared by the worker (which writes) and the API (which reads).

A writer encodes what it knows of an event once (`EventDraft.body()`); the log keeps that body
with what only the log can tell: the event's id, its `seq` and the attempt it belongs to.
`encode_event` puts the two together, once per event read, whoever reads it.
"""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from taskstream.events.types import RULES, EventType, TaskState

__all__ = [
    "ErrorInfo",
    "Event",
    "EventDraft",
    "EventType",
    "Progress",
    "Task",
    "TaskState",
    "encode_event",
    "utcnow",
]


class Progress(BaseModel):
    current: float = Field(examples=[2])
    total: float = Field(examples=[5])
    percent: float = Field(ge=0, le=100, examples=[40.0])
    message: str = Field("", examples=["step 2 of 5"])

    @classmethod
    def of(cls, current: float, total: float, message: str = "") -> "Progress":
        percent = 100.0 if total <= 0 else max(0.0, min(100.0, current * 100.0 / total))
        return cls(current=current, total=total, percent=round(percent, 2), message=message)


class ErrorInfo(BaseModel):
    type: str = Field(examples=["RetryableError"])
    message: str = Field(examples=["attempt 3 failed"])

    @classmethod
    def of(cls, exc: BaseException) -> "ErrorInfo":
        return cls(type=type(exc).__name__, message=str(exc) or type(exc).__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class EventDraft(BaseModel):
    """What a writer knows of an event: all but its log id, `seq`, state and attempt."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    kind: str
    type: EventType
    at: datetime = Field(default_factory=utcnow)
    params: dict[str, Any] | None = None
    progress: Progress | None = None
    result: JsonValue = None
    error: ErrorInfo | None = None
    retry_at: datetime | None = None
    worker: str | None = None
    owner: str | None = None  # kept with the task, not in the event

    def body(self) -> str:
        """The event's own fields as JSON, as the log stores them."""
        return self.model_dump_json(exclude_none=True, exclude=_ENVELOPE)


_ENVELOPE = {"type", "owner"}
_STATE_OF = {type.value: rule.state.value for type, rule in RULES.items()}


def encode_event(event_id: str, seq: int | str, type: str, attempt: int | str, body: str) -> str:
    """An event's JSON: what the log assigned (id, seq, attempt), its type and the state after
    it, then the writer's `body`. A task's attempts are 0 until its first starts."""
    head = f'{{"id":"{event_id}","seq":{seq},"type":"{type}","state":"{_STATE_OF[type]}"'
    if attempt and attempt != "0":
        head += f',"attempt":{attempt}'
    return f"{head},{body[1:]}"


class Event(BaseModel):
    """One step in a task's life, as stored in the log and sent to clients."""

    id: str = Field(description="The log's id of this event.", examples=["1764072000000-0"])
    task_id: str = Field(examples=["019abf3e6c2a7d1e9b41c0f2a55d3e10"])
    kind: str = Field(examples=["long"])
    type: EventType
    seq: int = Field(ge=1, description="Per-task sequence number: 1, 2, 3... with no gaps.")
    at: datetime
    state: TaskState = Field(description="The task's state after this event.")
    attempt: int | None = None
    params: dict[str, Any] | None = Field(None, description="The task's params (queued only).")
    progress: Progress | None = None
    result: JsonValue = None
    error: ErrorInfo | None = None
    retry_at: datetime | None = None
    worker: str | None = None


class Task(BaseModel):
    """A task's current state: the fold of all its events, updated atomically with each."""

    id: str = Field(examples=["019abf3e6c2a7d1e9b41c0f2a55d3e10"])
    kind: str = Field(examples=["long"])
    params: dict[str, Any] = Field(examples=[{"seconds": 5}])
    state: TaskState
    progress: Progress | None = None
    attempts: int = Field(0, description="Attempts started so far.")
    result: JsonValue = None
    error: ErrorInfo | None = None
    created_at: datetime
    started_at: datetime | None = Field(None, description="When the first attempt started.")
    finished_at: datetime | None = None
    retry_at: datetime | None = Field(None, description="When the next attempt is due.")
    cancel_requested: bool = False
    seq: int = Field(description="Sequence number of the last event applied.")
    last_event_id: str = Field(description="Log id of the last event applied.")
    worker: str | None = Field(None, description="The worker that ran the latest attempt.")
    owner: str | None = Field(None, description="Who submitted it (when the API requires keys).")
