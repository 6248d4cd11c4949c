"""Task kinds: declare one with `@task_kind(...)` in a module of this package."""

from taskstream.kinds.base import (
    AttemptEnded,
    OutputLimitExceeded,
    RetryableError,
    RetryPolicy,
    TaskCancelled,
    TaskContext,
    TaskKind,
)
from taskstream.kinds.registry import REGISTRY, KindRegistry, load, task_kind

__all__ = [
    "REGISTRY",
    "AttemptEnded",
    "KindRegistry",
    "OutputLimitExceeded",
    "RetryPolicy",
    "RetryableError",
    "TaskCancelled",
    "TaskContext",
    "TaskKind",
    "load",
    "task_kind",
]
