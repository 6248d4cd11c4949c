"""The event and task models, shared by the worker (which writes) and the API (which reads).

An event is written once by `EventDraft.dumps()` without its log id and sequence number; the log
assigns both atomically and `splice()` adds them to the stored JSON as text, so an event is
encoded exactly once, whoever reads it.
"""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic_core import to_json


class TaskState(StrEnum):
    queued = "queued"
    running = "running"
    retrying = "retrying"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({TaskState.succeeded, TaskState.failed, TaskState.cancelled})


class EventType(StrEnum):
    queued = "queued"
    started = "started"
    progress = "progress"
    retrying = "retrying"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def state(self) -> TaskState:
        return _STATE_AFTER[self]

    @property
    def final(self) -> bool:
        return self.state in FINISHED


_STATE_AFTER = {
    EventType.queued: TaskState.queued,
    EventType.started: TaskState.running,
    EventType.progress: TaskState.running,
    EventType.retrying: TaskState.retrying,
    EventType.succeeded: TaskState.succeeded,
    EventType.failed: TaskState.failed,
    EventType.cancelled: TaskState.cancelled,
}
FINAL_EVENT_TYPES = frozenset(t.value for t in EventType if t.final)


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
    """An event before the log has given it an id and a sequence number."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    kind: str
    type: EventType
    at: datetime = Field(default_factory=utcnow)
    attempt: int | None = None
    params: dict[str, Any] | None = None
    progress: Progress | None = None
    result: JsonValue = None
    error: ErrorInfo | None = None
    retry_at: datetime | None = None
    worker: str | None = None
    owner: str | None = Field(None, exclude=True)  # kept with the task, not in the event

    @property
    def state(self) -> TaskState:
        return self.type.state

    def dumps(self) -> str:
        body = self.model_dump_json(exclude_none=True)
        return f'{{"state":"{self.state.value}",{body[1:]}'


def json_text(value: Any) -> str:
    """`value` in JSON exactly as an event's fields are written (pydantic's own serializer)."""
    return to_json(value).decode()


# The two events of every attempt that succeeds, which the worker writes for each task: the same
# text as `EventDraft(...).dumps()` (tests hold them to it) without validating and serializing a
# model each time, which alone cost a trivial task about 6% of the worker's throughput.


def started_head(task_id: str, kind: str, worker: str, at: datetime) -> str:
    """A `started` event but for its attempt and closing brace, which BEGIN adds."""
    return (
        f'{{"state":"running","task_id":{json_text(task_id)},"kind":{json_text(kind)},'
        f'"type":"started","at":{json_text(at)},"worker":{json_text(worker)}'
    )


def succeeded_event(task_id: str, kind: str, attempt: int, result: JsonValue, at: datetime) -> str:
    """A `succeeded` event; `result` is a JSON value already validated as one."""
    tail = "}" if result is None else f',"result":{json_text(result)}}}'
    return (
        f'{{"state":"succeeded","task_id":{json_text(task_id)},"kind":{json_text(kind)},'
        f'"type":"succeeded","at":{json_text(at)},"attempt":{attempt:d}{tail}'
    )


def splice(event_id: str, seq: int | str, data: str) -> str:
    """The stored JSON of an event with its log id and sequence number put in front."""
    return f'{{"id":"{event_id}","seq":{seq},{data[1:]}'


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
