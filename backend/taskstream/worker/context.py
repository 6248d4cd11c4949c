"""The `TaskContext` a kind's function receives while it runs on a worker.

What a kind reports (progress, output, log lines, metadata) is buffered here and sent by a
flusher thread at most every OUTPUT_FLUSH_MS, as one event per output stream, the latest
progress and the latest metadata (earlier ones coalesce), and each log line; the attempt's
outcome is written only after `close()` has sent the rest. A kind may so call `write` tens of
thousands of times a second: a call takes a lock and appends to a list. The flusher starts with
the first buffered call, so a kind that reports nothing costs no thread.

Limits (each in `Settings`) are applied here, where a kind's writes are: past the output budget
of an attempt the chunk that meets it is cut and marked `truncated`, and later writes are dropped;
log lines are cut to a length and counted, the line past the count saying that the rest are
dropped; metadata too large raises `OutputLimitExceeded` in the kind.
"""

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from taskstream.errors import TransitionRefused
from taskstream.events.models import (
    STREAM_PATTERN,
    EventDraft,
    EventType,
    LogLine,
    OutputChunk,
    Progress,
)
from taskstream.events.store import SyncEventStore
from taskstream.kinds import AttemptEnded, OutputLimitExceeded, TaskCancelled
from taskstream.settings import Settings

_STREAM = re.compile(STREAM_PATTERN)
_LEVELS = frozenset(get_args(LogLine.model_fields["level"].annotation))
_compact = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
Level = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class OutputLimits:
    flush_seconds: float = 0.02
    max_bytes: int = 4 * 1024 * 1024
    max_streams: int = 8
    metadata_max_bytes: int = 16 * 1024
    log_line_max_chars: int = 2_000
    log_max_lines: int = 1_000
    progress_message_max_chars: int = 500

    @classmethod
    def of(cls, settings: Settings) -> "OutputLimits":
        return cls(
            flush_seconds=settings.output_flush_ms / 1000,
            max_bytes=settings.output_max_bytes,
            max_streams=settings.output_max_streams,
            metadata_max_bytes=settings.metadata_max_bytes,
            log_line_max_chars=settings.log_line_max_chars,
            log_max_lines=settings.log_max_lines,
            progress_message_max_chars=settings.progress_message_max_chars,
        )


@dataclass
class _Stream:
    """One output stream of the attempt: what was sent of it and what waits."""

    json: bool
    length: int = 0  # code points (text) or items sent or buffered before `pending`
    pending: list[Any] = field(default_factory=list)  # text pieces, or items
    truncated: bool = False


def _json(what: str, value: Any) -> str:
    try:
        return _compact(value)
    except TypeError as exc:
        raise TypeError(f"{what}: {exc}") from None
    except ValueError:  # json names no value: NaN or an infinity, somewhere in `value`
        raise TypeError(f"{what}: {cut(repr(value), 200)} holds NaN or an infinity") from None


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class WorkerContext:
    def __init__(
        self,
        store: SyncEventStore,
        task_id: str,
        kind: str,
        attempt: int,
        *,
        limits: OutputLimits | None = None,
        cancel_requested: bool = False,
        poll_seconds: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._task_id = task_id
        self._kind = kind
        self._attempt = attempt
        self._limits = limits or OutputLimits()
        self._poll = poll_seconds
        self._clock = clock
        self._sleep = sleep
        self._cancel = cancel_requested
        self._checked_at = clock()  # what the attempt's start read is fresh
        # What waits to be sent, guarded by `_lock`; `_sending` keeps flushes one at a time.
        self._lock = threading.Lock()
        self._sending = threading.Lock()
        self._progress: tuple[float, float, str] | None = None
        self._streams: dict[str, _Stream] = {}
        self._dirty: list[str] = []  # streams with pending output, in the order first written
        self._logs: list[LogLine] = []
        self._log_lines = 0
        self._metadata: dict[str, Any] = {}
        self._metadata_dirty = False
        self._bytes = 0
        self._out_of_output = False
        self._ended = False
        self._failure: BaseException | None = None  # what stopped the flusher
        self._flusher: threading.Thread | None = None  # started by the first buffered call
        self._wake: threading.Event | None = None

    @property
    def attempt(self) -> int:
        return self._attempt

    # What a kind calls.

    def progress(self, current: float, total: float, message: str = "") -> None:
        self._check()
        message = cut(str(message), self._limits.progress_message_max_chars)
        with self._lock:
            self._progress = (current, total, message)
        self._started()

    def write(self, text: str, stream: str = "output") -> None:
        if not isinstance(text, str):
            raise TypeError(f"write takes text, not {type(text).__name__}: use write_json")
        self._check()
        if not text:
            return  # nothing to add: no event, and no stream made
        with self._lock:
            out = self._stream(stream, json=False)
            if self._out_of_output:
                return
            size = len(text.encode())
            if self._bytes + size > self._limits.max_bytes:
                room = self._limits.max_bytes - self._bytes
                text = text.encode()[:room].decode(errors="ignore")
                size = len(text.encode())
                self._run_out(out)
            self._bytes += size
            out.pending.append(text)
            self._mark(stream)
        self._started()

    def write_json(self, value: Any, stream: str = "output") -> None:
        encoded = _json("write_json takes a JSON value", value)
        self._check()
        with self._lock:
            out = self._stream(stream, json=True)
            if self._out_of_output:
                return
            size = len(encoded.encode()) + 1
            if self._bytes + size > self._limits.max_bytes:
                self._run_out(out)
                self._mark(stream)
                return
            self._bytes += size
            out.pending.append(json.loads(encoded))  # as it will be read: a copy, JSON only
            self._mark(stream)
        self._started()

    def log(self, message: str, level: str = "info") -> None:
        if level not in _LEVELS:
            raise ValueError(f"log level {level!r} is none of {sorted(_LEVELS)}")
        self._check()
        with self._lock:
            if self._log_lines > self._limits.log_max_lines:
                return
            self._log_lines += 1
            if self._log_lines > self._limits.log_max_lines:
                limit = self._limits.log_max_lines
                line = LogLine(
                    level="warning", message=f"log limit of {limit} lines met: the rest dropped"
                )
            else:
                text = cut(str(message), self._limits.log_line_max_chars)
                line = LogLine(level=level, message=text)
            self._logs.append(line)
        self._started()

    def set_metadata(self, **fields: Any) -> None:
        self._check()
        with self._lock:
            merged = {**self._metadata, **fields}
            size = len(_json("metadata must be JSON values", merged).encode())
            if size > self._limits.metadata_max_bytes:
                raise OutputLimitExceeded(
                    f"metadata of {size} bytes; at most {self._limits.metadata_max_bytes}"
                )
            self._metadata = json.loads(_compact(merged))
            self._metadata_dirty = True
        self._started()

    def cancelled(self) -> bool:
        if not self._cancel and self._clock() - self._checked_at >= self._poll:
            self._remember(self._store.cancel_requested(self._task_id))
        return self._cancel

    def sleep(self, seconds: float) -> None:
        deadline = self._clock() + seconds
        while True:
            if self.cancelled():
                raise TaskCancelled("cancelled while running")
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            self._sleep(min(self._poll, remaining))

    # What the runner calls.

    def close(self) -> None:
        """Sends what is buffered and ends the attempt's writes: call before its outcome.
        Raises what kept the buffered writes from being sent (Redis away past its patience)."""
        with self._lock:
            self._ended = True
        if self._flusher is None:
            return  # nothing was ever buffered
        assert self._wake is not None
        self._wake.set()
        self._flusher.join()
        if self._failure is not None:
            raise self._failure
        with contextlib.suppress(TransitionRefused):
            self.flush()  # refused: the task ended meanwhile; its outcome is refused too

    def flush(self) -> None:
        """Sends what is buffered now, in one round trip."""
        with self._sending:
            drafts = self._take()
            if drafts:
                try:
                    appended = self._store.append_all(drafts)
                except TransitionRefused:
                    self._remember(True)  # the task was finished meanwhile: stop the kind
                    raise
                self._remember(any(a.cancel_requested for a in appended))

    # Inside.

    def _check(self) -> None:
        if self._ended:
            raise AttemptEnded(f"attempt {self._attempt} of task {self._task_id} has ended")
        if self._failure is not None:
            raise self._failure
        if self.cancelled():
            raise TaskCancelled("cancelled while running")

    def _stream(self, name: str, *, json: bool) -> _Stream:
        out = self._streams.get(name)
        if out is None:
            if not isinstance(name, str) or not _STREAM.match(name):
                raise ValueError(f"stream name {name!r} does not match {STREAM_PATTERN}")
            if len(self._streams) >= self._limits.max_streams:
                raise OutputLimitExceeded(f"at most {self._limits.max_streams} output streams")
            out = self._streams[name] = _Stream(json=json)
        if out.json != json:
            kind = "JSON items (write_json)" if out.json else "text (write)"
            raise TypeError(f"output stream {name!r} holds {kind}")
        return out

    def _mark(self, name: str) -> None:
        if name not in self._dirty:
            self._dirty.append(name)

    def _run_out(self, out: _Stream) -> None:
        out.truncated = True
        self._out_of_output = True

    def _started(self) -> None:
        if self._flusher is None:
            self._wake = threading.Event()
            self._flusher = threading.Thread(
                target=self._flush_every, name=f"flush-{self._task_id}", daemon=True
            )
            self._flusher.start()

    def _flush_every(self) -> None:
        assert self._wake is not None
        due = time.monotonic()
        while not self._ended:
            due += self._limits.flush_seconds  # a fixed schedule, whatever a flush takes
            self._wake.wait(max(0.0, due - time.monotonic()))
            if self._ended:
                return  # `close` sends the rest, from the kind's own thread
            try:
                self.flush()
            except TransitionRefused:
                return
            except BaseException as exc:  # Redis away past its patience: the kind sees it
                self._failure = exc
                return

    def _take(self) -> list[EventDraft]:
        """The events for what is buffered, which is emptied."""
        with self._lock:
            progress, self._progress = self._progress, None
            dirty, self._dirty = self._dirty, []
            chunks: list[OutputChunk] = []
            for name in dirty:
                out = self._streams[name]
                pending, out.pending = out.pending, []
                chunk = OutputChunk(
                    stream=name,
                    offset=out.length,
                    text=None if out.json else "".join(pending),
                    items=pending if out.json else None,
                    truncated=True if out.truncated else None,
                )
                out.length += chunk.size
                chunks.append(chunk)
            logs, self._logs = self._logs, []
            metadata = dict(self._metadata) if self._metadata_dirty else None
            self._metadata_dirty = False
        drafts = [self._draft(EventType.output, output=chunk) for chunk in chunks]
        drafts += [self._draft(EventType.log, log=line) for line in logs]
        if metadata is not None:
            drafts.append(self._draft(EventType.metadata, metadata=metadata))
        if progress is not None:
            drafts.append(self._draft(EventType.progress, progress=Progress.of(*progress)))
        return drafts

    def _draft(self, type: EventType, **fields: Any) -> EventDraft:
        return EventDraft(task_id=self._task_id, kind=self._kind, type=type, **fields)

    def _remember(self, cancel_requested: bool) -> None:
        self._cancel = self._cancel or cancel_requested
        self._checked_at = self._clock()
