"""The event and task models, shared by the worker (which writes) and the API (which reads).

A writer encodes what it knows of an event once (`EventDraft.body()`); the log keeps that body
with what only the log can tell: the event's id, its `seq` and the attempt it belongs to.
`encode_event` puts the two together, once per event read, whoever reads it.
"""

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from taskstream.events.types import RULES, EventType, TaskState

__all__ = [
    "MAX_TAGS",
    "STREAM_PATTERN",
    "TAG_PATTERN",
    "ErrorInfo",
    "Event",
    "EventDraft",
    "EventType",
    "LogLine",
    "LoggedLine",
    "OutputChunk",
    "OutputStream",
    "Progress",
    "StreamContent",
    "Task",
    "TaskOutput",
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


STREAM_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
TAG_PATTERN = r"^[A-Za-z0-9:_.\-]{1,64}$"
MAX_TAGS = 8  # a task's tags are each an index entry: a few, to find it by
Metadata = dict[str, JsonValue]


class OutputChunk(BaseModel):
    """What one `output` event adds to one of the task's output streams."""

    stream: str = Field(pattern=STREAM_PATTERN, examples=["output"])
    offset: int = Field(
        ge=0,
        description="The stream's length before this chunk: Unicode code points of a text "
        "stream, items of a JSON stream. A client that holds that many applies the chunk.",
    )
    text: str | None = Field(None, description="The text appended (a text stream).")
    items: list[JsonValue] | None = Field(None, description="The items appended (a JSON stream).")
    truncated: bool | None = Field(
        None, description="True on the chunk that met the output limit: nothing follows it."
    )

    @property
    def size(self) -> int:
        return len(self.text) if self.text is not None else len(self.items or ())


class OutputStream(BaseModel):
    """One output stream of a task, as the task shows it (its content: `/output`)."""

    type: Literal["text", "json"]
    length: int = Field(ge=0, description="Code points of text, or items, written so far.")
    truncated: bool = False


class StreamContent(OutputStream):
    """One output stream with its content so far."""

    text: str | None = Field(None, description="What a text stream holds.")
    items: list[JsonValue] | None = Field(None, description="What a JSON stream holds.")


class LoggedLine(BaseModel):
    """A log line as the task keeps it."""

    at: datetime
    level: Literal["debug", "info", "warning", "error"]
    message: str


class TaskOutput(BaseModel):
    """A task's output so far: open its event stream from `last_event_id` for the rest. (Sent
    without nulls: a stream has `text` or `items`, as its type says.)"""

    task_id: str
    last_event_id: str = Field(description="The id of the last event this output includes.")
    streams: dict[str, StreamContent] = Field(default_factory=dict)
    logs: list[LoggedLine] = Field(
        default_factory=list,
        description="The task's last log lines (at most LOG_MAX_LINES), oldest first; `logs` of "
        "the task counts them all.",
    )


class LogLine(BaseModel):
    level: Literal["debug", "info", "warning", "error"] = "info"
    message: str


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
    output: OutputChunk | None = None
    log: LogLine | None = None
    metadata: Metadata | None = None
    tags: list[str] | None = None
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
    output: OutputChunk | None = None
    log: LogLine | None = None
    metadata: Metadata | None = Field(None, description="The task's metadata after this event.")
    tags: list[str] | None = Field(None, description="The task's tags (queued only).")


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
    tags: list[str] = Field(default_factory=list, examples=[["user:42", "report"]])
    metadata: Metadata | None = Field(None, description="What the task's attempt reports.")
    output: dict[str, OutputStream] = Field(
        default_factory=dict,
        description="The latest attempt's output streams (their content: `/output`).",
    )
    logs: int = Field(0, description="Log lines written, by every attempt (the last: `/output`).")

    @field_validator("tags", mode="before")
    @classmethod
    def _no_tags(cls, value: Any) -> Any:
        return [] if value is None else value  # a task submitted without tags
