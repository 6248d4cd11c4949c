"""One attempt of one task: the events around a kind's function, and what its outcome means.

This is plain logic over the event store; `worker/app.py` wraps it in Celery tasks. `schedule_retry`
is how a retry is asked of the queue (Celery's `Task.retry`, which raises to end the attempt).
"""

import logging
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from pydantic import JsonValue, TypeAdapter, ValidationError

from taskstream.errors import TransitionRefused
from taskstream.events.models import ErrorInfo, EventDraft, EventType, TaskState, utcnow
from taskstream.events.store import SyncEventStore
from taskstream.kinds import RetryableError, TaskCancelled, TaskKind
from taskstream.worker.context import WorkerContext

log = logging.getLogger(__name__)
_JSON = TypeAdapter(JsonValue)


class Runner:
    def __init__(
        self,
        store: SyncEventStore,
        kind: TaskKind[Any],
        worker: str,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._kind = kind
        self._worker = worker
        self._jitter = jitter

    def run(self, task_id: str, schedule_retry: Callable[[float], None]) -> None:
        task = self._store.get_task(task_id)
        if task is None or task.state.finished:
            log.info("skipping task %s: %s", task_id, "unknown" if task is None else task.state)
            return
        attempt = task.attempts + 1
        try:
            self._append(task_id, EventType.started, attempt=attempt, worker=self._worker)
        except TransitionRefused as refused:
            log.info("not starting task %s: %s", task_id, refused)
            return
        ctx = WorkerContext(self._store, task_id, self._kind.name, attempt)
        try:
            if ctx.cancelled():
                raise TaskCancelled("cancelled before it started")
            result = _JSON.validate_python(self._kind.execute(task.params, ctx))
        except TaskCancelled:
            self._finish(task_id, EventType.cancelled, attempt=attempt)
        except RetryableError as exc:
            self._retry_or_fail(task_id, task.params, attempt, exc, schedule_retry)
        except SoftTimeLimitExceeded:
            limit = self._kind.time_limit(self._kind.params.model_validate(task.params))
            error = ErrorInfo(type="TimeLimitExceeded", message=f"ran longer than {limit:g} s")
            self._finish(task_id, EventType.failed, attempt=attempt, error=error)
        except ValidationError as exc:
            error = ErrorInfo(type="InvalidResult", message=str(exc))
            self._finish(task_id, EventType.failed, attempt=attempt, error=error)
        except Exception as exc:
            log.exception("task %s (%s) failed", task_id, self._kind.name)
            self._finish(task_id, EventType.failed, attempt=attempt, error=ErrorInfo.of(exc))
        else:
            self._finish(task_id, EventType.succeeded, attempt=attempt, result=result)

    def _retry_or_fail(
        self,
        task_id: str,
        params: dict[str, Any],
        attempt: int,
        exc: RetryableError,
        schedule_retry: Callable[[float], None],
    ) -> None:
        policy = self._kind.retry_policy(params)
        if attempt > policy.max_retries:
            self._finish(task_id, EventType.failed, attempt=attempt, error=ErrorInfo.of(exc))
            return
        delay = policy.delay(attempt, self._jitter())
        retry_at = utcnow() + timedelta(seconds=delay)
        error = ErrorInfo.of(exc)
        self._append(task_id, EventType.retrying, attempt=attempt, error=error, retry_at=retry_at)
        schedule_retry(delay)

    def _finish(self, task_id: str, type: EventType, **fields: Any) -> None:
        try:
            self._append(task_id, type, **fields)
        except TransitionRefused as refused:
            log.warning("outcome of task %s not recorded: %s", task_id, refused)

    def _append(self, task_id: str, type: EventType, **fields: Any) -> None:
        draft = EventDraft(task_id=task_id, kind=self._kind.name, type=type, **fields)
        allowed = {TaskState.running} if type.final else None
        self._store.append(draft, allowed)
