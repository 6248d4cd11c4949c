"""What a task kind is: a params model, a title, a description and a plain function.

A kind's function knows nothing of Celery, Redis or HTTP. It receives its validated params and a
`TaskContext` to report progress, stream output, log and notice cancellation, returns a JSON
value, and raises `RetryableError` for failures worth another attempt (any other exception fails
the task).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, JsonValue

P = TypeVar("P", bound=BaseModel)


class TaskCancelled(Exception):
    """Raised inside a task when cancellation was requested; the task ends `cancelled`."""


class RetryableError(Exception):
    """Raised by a task for a failure that another attempt may not meet."""


class AttemptEnded(RuntimeError):
    """A write to a task's context after its attempt ended (from a thread the kind left behind)."""


class OutputLimitExceeded(ValueError):
    """A write the limits never admit (metadata past METADATA_MAX_BYTES, too many streams)."""


class TaskContext(Protocol):
    """What a kind's function may do while it runs. Every call but `attempt` raises TaskCancelled
    once the task was asked to stop. Writes are cheap: they are buffered and sent every
    OUTPUT_FLUSH_MS, and all of them before the attempt's outcome."""

    @property
    def attempt(self) -> int: ...

    def progress(self, current: float, total: float, message: str = "") -> None:
        """Report progress: calls closer together than the flush interval coalesce, the latest
        wins."""

    def write(self, text: str, stream: str = "output") -> None:
        """Append `text` to one of the task's output streams."""

    def write_json(self, value: Any, stream: str = "output") -> None:
        """Append one JSON item to one of the task's output streams (a stream of items)."""

    def log(self, message: str, level: str = "info") -> None:
        """A log line of the task: `debug`, `info`, `warning` or `error`."""

    def set_metadata(self, **fields: Any) -> None:
        """Merge `fields` (JSON values) into the task's metadata."""

    def cancelled(self) -> bool: ...

    def sleep(self, seconds: float) -> None:
        """Sleep, waking within a fraction of a second to raise TaskCancelled when cancelled."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits between half and all of base * 2**(n-1)."""

    max_retries: int = 0
    base_seconds: float = 1.0
    cap_seconds: float = 30.0

    def delay(self, attempt: int, jitter: float) -> float:
        """`jitter` is a uniform draw in [0, 1); the same draw gives the same delay."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0 ** (attempt - 1))
        return ceiling / 2 + ceiling / 2 * jitter

    @property
    def longest_wait(self) -> float:
        return min(self.cap_seconds, self.base_seconds * 2.0 ** max(self.max_retries - 1, 0))


@dataclass(frozen=True)
class TaskKind(Generic[P]):
    name: str
    title: str
    description: str
    params: type[P]
    run: Callable[[P, TaskContext], JsonValue]
    retry: Callable[[P], RetryPolicy] = field(default=lambda _params: RetryPolicy())
    time_limit: Callable[[P], float] = field(default=lambda _params: 60.0)
    max_time_limit: float = 60.0
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)

    def execute(self, raw_params: dict[str, Any], ctx: TaskContext) -> JsonValue:
        return self.run(self.params.model_validate(raw_params), ctx)

    def retry_policy(self, raw_params: dict[str, Any]) -> RetryPolicy:
        return self.retry(self.params.model_validate(raw_params))
